"""Ticket text as the model and the entity extractor read it.

Mail-generated tickets carry far more than the request: client HTML, "[EXTERNAL]" banners, the
quoted history of earlier tickets, forwarded headers, signatures and legal disclaimers. `clean`
keeps the request and drops the rest, the same way at training and at inference time.

HTML that a mail client would not show (display:none, zero-size or white text, comments, <style>)
is separated out, never read as part of the request: it is what an attacker hides for a machine.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_HTML_HINT = re.compile(r"<\s*/?\s*(html|body|div|p|br|span|table|td|tr|font|b|i|u|a|ul|li|o:p|style)\b", re.I)
_BLOCKS = frozenset({"p", "div", "br", "li", "tr", "table", "h1", "h2", "h3", "h4", "blockquote", "pre", "ul", "ol"})
_INVISIBLE_TAGS = frozenset({"style", "script", "head", "title", "template", "noscript", "xml"})
_VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"})
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:;|$)|"
    r"(?<![-\w])color\s*:\s*(?:#fff(?:fff)?|white|transparent)\b|opacity\s*:\s*0(?:\.0+)?\s*(?:;|$)|"
    r"max-height\s*:\s*0|height\s*:\s*0(?:px)?\s*;\s*overflow\s*:\s*hidden",
    re.I,
)


class _Extractor(HTMLParser):
    """Visible text, and separately the text a reader would not see."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.visible: list[str] = []
        self.hidden: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, hides its content)

    def _hiding(self) -> bool:
        return any(hides for _, hides in self._stack)

    def _discarding(self) -> bool:
        return any(tag in _INVISIBLE_TAGS for tag, _ in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        hides = (
            "hidden" in values
            or (values.get("aria-hidden") or "").lower() == "true"
            or bool(_HIDDEN_STYLE.search(values.get("style") or ""))
        )
        if tag in _BLOCKS:
            (self.hidden if self._hiding() else self.visible).append("\n")
        if tag not in _VOID:
            self._stack.append((tag, hides))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break
        if tag in _BLOCKS:
            self.visible.append("\n")

    def handle_data(self, data: str) -> None:
        if self._discarding():  # <style>, <head>, <script>: markup, not text anyone wrote
            return
        (self.hidden if self._hiding() else self.visible).append(data)

    def handle_comment(self, data: str) -> None:
        if not data.strip().startswith("[if"):  # Outlook's conditional comments are markup, not text
            self.hidden.append(data)


def _tidy(text: str) -> str:
    text = text.replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def split_html(text: str) -> tuple[str, str]:
    """(what a mail client shows, what it hides). Plain text comes back as it is."""
    if not _HTML_HINT.search(text) and "<!--" not in text:
        return _tidy(html.unescape(text)), ""
    parser = _Extractor()
    parser.feed(text)
    parser.close()
    return _tidy("".join(parser.visible)), _tidy(" ".join(parser.hidden))


# --- e-mail furniture ------------------------------------------------------------------------

# "[EXTERNAL]" banners that mail gateways and PSAs put on top, anywhere in the text (typos allowed).
_BANNER = re.compile(
    r"((caution|warning|external)\W{0,3}:?\s*this \w+ originated from outside of the \w+\.?"
    r"(\s*do not \w+ links.{0,120}?\.)?|\[?external e-?mail\]?\s*(be careful with links and attachments\.?)?|"
    r"\*{2,}[^*\n]{0,120}\*{2,})",
    re.I,
)
_DISCLAIMER = re.compile(
    r"(confidentiality notice|intended recipient|confidential and may be|legally privileged|richtige adressat|"
    r"registered in england|registered office|company number|consider the environment before printing|"
    r"scanned for viruses|vertrauliche informationen|disclaimer\s*:|unauthori[sz]ed use|is unauthori[sz]ed|"
    r"will never be requested by e-?mail)",
    re.I,
)
_MOBILE = re.compile(r"^\s*(sent from my \w+|get outlook for \w+|sent from outlook|von meinem \w+ gesendet)\b.*$", re.I)
# A reply's quoted history starts with "On <date>, <someone> wrote:" (or its translations).
_WROTE = re.compile(r"(^|\s)(on|am|le|el|op)\s[^\n]{4,120}?(wrote|schrieb|a écrit|escribió|schreef)\s*:", re.I)
# Forwarded or replied-to headers, on separate lines or run together in one line.
_HEADER_START = re.compile(
    r"(-{3,}\s*(forwarded message|original message|ursprüngliche nachricht|message d'origine)\s*-{3,}|"
    r"(^|\s)(from|von|de)\s*:\s*[^\n]{1,120}?\s(sent|date|gesendet|envoyé)\s*:)",
    re.I,
)
_HEADER_LINE = re.compile(r"^\s*(from|sent|date|to|cc|subject|von|an|betreff|gesendet|de|envoyé|à|objet)\s*:.*$", re.I)
_INLINE_HEADERS = re.compile(
    r"(from|von|de)\s*:\s*.{1,120}?\s(sent|date|gesendet|envoyé)\s*:.{1,60}?\s(to|an|à)\s*:.{1,200}?"
    r"\s(subject|betreff|objet)\s*:\s*",
    re.I,
)
_CLOSING = re.compile(
    r"^\s*(thanks|thank you|many thanks|thanks again|thx|ta|cheers|kind regards|best regards|warm regards|"
    r"regards|best|br|kr|sincerely|yours sincerely|danke( und gruß)?|mit freundlichen grüßen|viele grüße|lg|"
    r"merci( d'avance)?|cordialement|gracias|saludos|bedankt|met vriendelijke groet|obrigad[oa]|grazie|"
    r"dziękuję)\b[\s,.!]*(\w+[\s,.!]*)?$",
    re.I,
)
# The same sign-offs inside flattened text (no line breaks left): cut there if the rest is short.
_INLINE_CLOSING = re.compile(
    r"[\s,.!]((many )?thanks|thank you|thx|cheers|kind regards|best regards|regards|danke und gruß|"
    r"mit freundlichen grüßen|merci d'avance|cordialement|gracias|bedankt)\b[\s,.!]",
    re.I,
)
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|hiya|dear|good (morning|afternoon|evening)|morning|hallo|bonjour|hola|hoi|olá|ciao)\b"
    r"(\s+(team|all|everyone|support|it|zusammen|there|guys))?(\s+[^\W\d_]+)?\s*[,!:]\s*|"
    r"^\s*(hi|hello|hey|hiya|morning|hallo|bonjour|hola|hoi|olá|ciao)\b(\s+(team|all|everyone|support|zusammen))?"
    r"\s*(?=\n|$)",
    re.I,
)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?", re.U)


def _words(text: str) -> int:
    return len(_WORD.findall(text))


_HEADER_LABEL = re.compile(r"(^|\s)(from|sent|date|to|cc|subject|von|gesendet|an|betreff|envoyé|objet)\s*:", re.I)


def _drop_headers(rest: str) -> str:
    """The headers of a quoted or forwarded message: whole lines, or (text flattened into one line)
    the header labels in the first few hundred characters."""
    rest = re.sub(r"-{3,}\s*[^-\n]{3,40}?\s*-{3,}", " ", rest, count=1)
    lines = rest.split("\n")
    if sum(bool(_HEADER_LINE.match(line)) for line in lines[:8]) >= 2:
        return "\n".join(line for line in lines if not _HEADER_LINE.match(line))
    head, tail = rest[:400], rest[400:]
    return _HEADER_LABEL.sub(" ", head) + tail


def _cut_history(text: str, depth: int = 0) -> str:
    """Keep the newest message. A short note on top ("see below", "FYI") means the request is the
    message underneath it: then that message is kept instead, without its headers."""
    markers = [m for m in (_WROTE.search(text), _HEADER_START.search(text), re.search(r"^\s*>", text, re.M)) if m]
    if not markers:
        return text
    first = min(markers, key=lambda m: m.start())
    top = text[: first.start()]
    if _words(_strip_signature(top)) >= 6 or depth >= 3:
        return top
    rest = text[first.start() :]
    rest = rest[first.end() - first.start() :] if first.re is _WROTE else _drop_headers(rest)
    rest = re.sub(r"^\s*>\s?", "", rest, flags=re.M)
    if rest.strip() == text[first.start() :].strip():
        return text  # nothing recognisable to remove: keep the text whole rather than lose it
    return (top + "\n" + _cut_history(rest, depth + 1)).strip()


def _strip_signature(text: str) -> str:
    lines = text.split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _MOBILE.match(line):
            break
        if line.strip() == "--":
            break
        if _CLOSING.match(line) and i > 0:
            # A sign-off, then only a few short lines (name, title, phone): the signature.
            tail = [t for t in lines[i + 1 :] if t.strip()]
            if len(tail) <= 8 and all(_words(t) <= 8 for t in tail):
                break
        kept.append(line)
    result = "\n".join(kept)
    if "\n" not in result.strip():
        # Flattened text: a sign-off followed by at most a short tail.
        for match in _INLINE_CLOSING.finditer(result):
            if _words(result[: match.start()]) >= 3 and _words(result[match.end() :]) <= 25:
                return result[: match.start()]
    return result


_CONTACT_LINE = re.compile(
    r"^\s*((t|tel|phone|m|mob|mobile|fax|e|email|w|web)\s*[:.]\s*[+\d(\w]|www\.|https?://|\+?\d[\d ()-]{7,}$|"
    r"follow us\b)",
    re.I,
)


def _strip_contact_block(text: str) -> str:
    """A last paragraph of short lines with a phone number or web address is a signature without sign-off."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    if len(paragraphs) < 2:
        return text
    lines = [line for line in paragraphs[-1].split("\n") if line.strip()]
    if len(lines) <= 7 and all(_words(line) <= 6 for line in lines) and any(_CONTACT_LINE.match(x) for x in lines):
        return "\n\n".join(paragraphs[:-1])
    return text


def _strip_disclaimers(text: str) -> str:
    """Legal text goes, as whole paragraphs or, in text whose line breaks were lost, from its first
    sentence on (disclaimers close a message)."""
    paragraphs = re.split(r"\n\s*\n", text)
    kept = [p for p in paragraphs if not ((m := _DISCLAIMER.search(p)) and _words(p[: m.start()]) < 4)]
    text = "\n\n".join(kept)
    match = _DISCLAIMER.search(text)
    if match and _words(text[: match.start()]) >= 3:
        ends = list(_SENTENCE_END.finditer(text, 0, match.start()))
        text = text[: ends[-1].end() if ends else match.start()]
    return text


_SENTENCE_END = re.compile(r"[.!?](\s|$)|\n")


def _strip_greeting(text: str) -> str:
    return _GREETING.sub("", text.lstrip(), count=1)


@dataclass
class CleanText:
    """A ticket's text, taken apart. `request` is what the model reads."""

    subject: str
    request: str
    visible: str  # everything a reader sees, furniture included (for the conservative checks)
    hidden: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def model_text(self) -> str:
        return f"{self.subject}\n{self.request}".strip()


_SUBJECT_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|tr|sv|vs)\s*:\s*|\[[^\]]{0,30}\]\s*)+", re.I)


def clean_subject(subject: str) -> str:
    visible, _ = split_html(subject)
    return _SUBJECT_PREFIX.sub("", visible).strip()


def clean(subject: str, body: str) -> CleanText:
    visible, hidden = split_html(body or "")
    text = _BANNER.sub(" ", visible)
    text = _cut_history(text)
    text = _strip_disclaimers(text)
    text = _strip_signature(text)
    text = _strip_contact_block(text)
    text = _strip_greeting(text)
    notes = ["hidden HTML text ignored"] if hidden.strip() else []
    return CleanText(
        subject=clean_subject(subject or ""), request=_tidy(text), visible=visible, hidden=hidden, notes=notes
    )


# --- what the model sees ---------------------------------------------------------------------

EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_URL = re.compile(r"https?://\S+|www\.\S+", re.I)


def for_model(text: str) -> str:
    """Lower-cased, with addresses, links and digits folded: the model should learn the request, not
    who sent it or which ticket number it had."""
    text = EMAIL.sub(" zzemail ", text)
    text = _URL.sub(" zzurl ", text)
    text = re.sub(r"\d", "0", text)
    return re.sub(r"\s+", " ", text.lower()).strip()


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if _words(s) >= 2]
