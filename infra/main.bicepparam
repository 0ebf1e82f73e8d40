// Parameters for infra/main.bicep. Copy this file (e.g. to infra/contoso.bicepparam, keeping the
// `using` line pointing at main.bicep), fill in your values, and deploy with:
//
//   az deployment group create --resource-group <rg> --parameters infra/contoso.bicepparam
//
// No secret belongs in this file. The eight secrets are read from your shell's environment at
// deployment time (same names as the app settings), stored in Key Vault, and referenced from the app
// settings. Leave a secret's variable unset on later deployments and the stored value is kept.
// Leave any other value empty ('') to keep TierOne's default (README, "Configuration").

using 'main.bicep'

// --- Deployment ---------------------------------------------------------------------------------

// 3–11 lowercase letters or digits; part of every resource name. Use another one (e.g. 'tieronedev')
// for a second installation in the same subscription.
param name = 'tierone'

// Region: must offer Flex Consumption (`az functionapp list-flexconsumption-locations -o table`).
// Default: the resource group's region.
// param location = 'westeurope'

// 'Standard_ZRS' where the region has availability zones (keeps queues and audit trail through a zone outage).
param storageSku = 'Standard_LRS'

param pythonVersion = '3.11'
param maximumInstanceCount = 40
param instanceMemoryMB = 2048
param logRetentionInDays = 30

// Your own Entra object id (`az ad signed-in-user show --query id -o tsv`) or an admin group's: it gets
// Storage Table Data Contributor (for `tierone tenants map`) and Key Vault Secrets Officer (rotation).
param adminPrincipalId = ''
param adminPrincipalType = 'User'

// --- Entra ID -----------------------------------------------------------------------------------

// true: the deployment creates the multi-tenant "TierOne" app registration and the "TierOne sign-in"
// registration, with the function app's managed identity as their federated credential. Needs
// Application Administrator or Cloud Application Administrator in your tenant.
// false: create both by hand (docs/deploy.md, "Entra ID by hand") and give their client ids below.
param deployEntra = true
param appClientId = ''
param signInClientId = ''

// Shown to customer admins on the consent screen.
param appDisplayName = 'TierOne'

// Object id of the Entra group of technicians who may open approval and dashboard pages.
param techniciansPrincipalId = ''

// Exactly docs/permissions.md, "Enabled today". Adding one means every customer consents again.
param graphApplicationPermissions = [
  'User.Read.All'
  'User-PasswordProfile.ReadWrite.All'
  'RoleManagement.Read.Directory'
]

param tokenExchangeAudience = 'api://AzureADTokenExchange'

// --- TierOne --------------------------------------------------------------------------------------

// Empty: https://<function app>.azurewebsites.net. Set it if you put a custom domain in front.
param publicBaseUrl = ''
param secretLinkTtlMinutes = ''
param maxWebhookBytes = ''
param retryBaseSeconds = ''
param retryMaxDeferrals = ''
param reconcileLookbackMinutes = ''
param graphBaseUrl = ''
param graphScope = ''
param authorityHost = ''
param exchangeScope = ''
param exchangeAdminUrl = ''

// Triage's optional LLM second opinion (Azure OpenAI, reached with the managed identity: give it
// "Cognitive Services OpenAI User" on your Azure OpenAI resource). Empty endpoint: off.
param openaiEndpoint = ''
param openaiDeployment = ''
param openaiApiVersion = ''
param openaiScope = ''
param openaiTimeoutSeconds = ''
param triageCategoryMap = ''              // JSON, e.g. '{"Password Reset": "password_reset"}'

// Approvals: Teams (Workflows webhook; URL as the secret TIERONE_TEAMS_WEBHOOK_URL), Slack (used when
// slackChannel is set; token and signing secret from the environment), e-mail (from approvalSender).
param useTeamsApprovals = false
param slackChannel = ''                   // channel id, e.g. 'C0123456789'
param slackApiUrl = ''
param approvalSender = ''                 // e.g. 'approvals@msp.example'
param approvalTtlMinutes = ''
param approvalChannelWaitMinutes = ''

// --- ConnectWise PSA (leave connectwiseApiUrl empty if you do not use it) ---------------------------

param connectwiseApiUrl = ''              // e.g. 'https://api-na.myconnectwise.net/v2025_1/apis/3.0'
param connectwiseCompanyId = ''
param connectwisePublicKey = ''
param connectwiseCallbackOrigin = ''      // e.g. 'https://na.myconnectwise.net'
param connectwiseApiVersion = ''
param connectwiseApiMember = ''
param connectwiseClosedStatus = ''
param connectwiseEscalationStatus = ''
param connectwiseWorkType = ''
param connectwiseTenantField = ''

// --- Autotask (leave autotaskUsername empty if you do not use it) ---------------------------------

param autotaskUsername = ''               // the API-only user's e-mail
param autotaskApiResourceId = ''          // that user's resource id
param autotaskApiUrl = ''
param autotaskZoneLookupUrl = ''
param autotaskCompleteStatus = ''
param autotaskEscalationQueueId = ''
param autotaskNoteType = ''
param autotaskTimeRoleId = ''
param autotaskTenantUdf = ''

// --- HaloPSA (leave halopsaUrl empty if you do not use it) ----------------------------------------

param halopsaUrl = ''                     // e.g. 'https://contoso.halopsa.com'
param halopsaClientId = ''
param halopsaApiAgentId = ''
param halopsaTenant = ''
param halopsaWebhookUsername = ''
param halopsaClosedStatusId = ''
param halopsaNoteOutcomeId = ''
param halopsaEscalationTeam = ''

// --- Secrets: from the environment, never from this file ------------------------------------------

param secretEncryptionKey = readEnvironmentVariable('TIERONE_SECRET_ENCRYPTION_KEY', '')
param connectwisePrivateKey = readEnvironmentVariable('CONNECTWISE_PRIVATE_KEY', '')
param connectwiseClientId = readEnvironmentVariable('CONNECTWISE_CLIENT_ID', '')
param autotaskSecret = readEnvironmentVariable('AUTOTASK_SECRET', '')
param autotaskIntegrationCode = readEnvironmentVariable('AUTOTASK_INTEGRATION_CODE', '')
param autotaskWebhookSecret = readEnvironmentVariable('AUTOTASK_WEBHOOK_SECRET', '')
param halopsaClientSecret = readEnvironmentVariable('HALOPSA_CLIENT_SECRET', '')
param halopsaWebhookPassword = readEnvironmentVariable('HALOPSA_WEBHOOK_PASSWORD', '')
param teamsWebhookUrl = readEnvironmentVariable('TIERONE_TEAMS_WEBHOOK_URL', '')
param slackBotToken = readEnvironmentVariable('TIERONE_SLACK_BOT_TOKEN', '')
param slackSigningSecret = readEnvironmentVariable('TIERONE_SLACK_SIGNING_SECRET', '')
