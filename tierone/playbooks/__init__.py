"""Playbooks: one module per intent; each step checks, changes, and reads back."""
