// TierOne in the MSP's own Azure subscription: one resource group, one command.
//
//   az deployment group create --resource-group <rg> --parameters infra/main.bicepparam
//
// Flex Consumption, a user-assigned managed identity for everything, storage without shared keys,
// Key Vault (RBAC) for the few secrets, Log Analytics and Application Insights without local
// authentication, App Service Authentication in front of the approval and dashboard pages, and
// (deployEntra) TierOne's Entra app registrations with the identity as their federated credential.
// docs/deploy.md walks through it from an empty subscription to the first resolved ticket.

targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------------------

@description('Short name used in every resource name: 3–11 lowercase letters or digits.')
@minLength(3)
@maxLength(11)
param name string = 'tierone'

@description('Azure region; it must offer Flex Consumption (`az functionapp list-flexconsumption-locations`).')
param location string = resourceGroup().location

@description('Tags for every resource.')
param tags object = {
  application: 'TierOne'
}

@description('Python version of the Functions runtime (TierOne is built and tested on 3.11).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('Most instances the function app may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Storage replication (ZRS where the region has availability zones).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

@description('Object id of the administrator (user or group) who runs the `tierone` CLI and rotates secrets. Empty: none.')
param adminPrincipalId string = ''

@description('Whether adminPrincipalId is a user or a group.')
@allowed([
  'User'
  'Group'
])
param adminPrincipalType string = 'User'

// ---------------------------------------------------------------------------------------------
// Entra ID
// ---------------------------------------------------------------------------------------------

@description('Create TierOne\'s app registrations with the Microsoft Graph Bicep extension (needs Entra rights; see docs/deploy.md).')
param deployEntra bool = true

@description('With deployEntra = false: client id of the multi-tenant TierOne app registration created by hand.')
param appClientId string = ''

@description('With deployEntra = false: client id of the single-tenant sign-in app registration created by hand.')
param signInClientId string = ''

@description('Display name of the multi-tenant app, as customers see it when they consent.')
param appDisplayName string = 'TierOne'

@description('Object id of the group allowed to sign in to the approval and dashboard pages (deployEntra only). Empty: assign later.')
param techniciansPrincipalId string = ''

@description('Microsoft Graph application permissions requested from each customer tenant (docs/permissions.md). Adding one later means every customer consents again.')
param graphApplicationPermissions array = [
  'User.Read.All'
  'User-PasswordProfile.ReadWrite.All'
  'RoleManagement.Read.Directory'
]

@description('Audience of the managed identity token exchange: api://AzureADTokenExchange (public), api://AzureADTokenExchangeUSGov, api://AzureADTokenExchangeChina.')
param tokenExchangeAudience string = 'api://AzureADTokenExchange'

// ---------------------------------------------------------------------------------------------
// TierOne settings (empty = TierOne's default, see the README's app settings table)
// ---------------------------------------------------------------------------------------------

@description('TIERONE_PUBLIC_BASE_URL: the address in one-time links. Empty: https://<function app default host name>.')
param publicBaseUrl string = ''

@description('TIERONE_SECRET_LINK_TTL_MINUTES (default 240).')
param secretLinkTtlMinutes string = ''

@description('TIERONE_MAX_WEBHOOK_BYTES (default 262144).')
param maxWebhookBytes string = ''

@description('TIERONE_RETRY_BASE_SECONDS (default 30).')
param retryBaseSeconds string = ''

@description('TIERONE_RETRY_MAX_DEFERRALS (default 10).')
param retryMaxDeferrals string = ''

@description('TIERONE_RECONCILE_LOOKBACK_MINUTES (default 240).')
param reconcileLookbackMinutes string = ''

@description('GRAPH_BASE_URL (default https://graph.microsoft.com/v1.0; change for national clouds).')
param graphBaseUrl string = ''

@description('GRAPH_SCOPE (default https://graph.microsoft.com/.default).')
param graphScope string = ''

@description('AZURE_AUTHORITY_HOST (default the public cloud).')
param authorityHost string = ''

@description('EXCHANGE_SCOPE (default https://outlook.office365.com/.default; change for national clouds).')
param exchangeScope string = ''

@description('EXCHANGE_ADMIN_URL (default https://outlook.office365.com/adminapi/beta).')
param exchangeAdminUrl string = ''

@description('TIERONE_OPENAI_ENDPOINT: Azure OpenAI endpoint for triage\'s second opinion (used only with a deployment). Empty: off.')
param openaiEndpoint string = ''

@description('TIERONE_OPENAI_DEPLOYMENT: the Azure OpenAI deployment name.')
param openaiDeployment string = ''

@description('TIERONE_OPENAI_API_VERSION (default 2024-10-21).')
param openaiApiVersion string = ''

@description('TIERONE_OPENAI_SCOPE (default https://cognitiveservices.azure.com/.default).')
param openaiScope string = ''

@description('TIERONE_OPENAI_TIMEOUT_SECONDS (default 15).')
param openaiTimeoutSeconds string = ''

@description('TIERONE_TRIAGE_CATEGORY_MAP: JSON object, PSA ticket category → intent.')
param triageCategoryMap string = ''

// Approvals (tierone/approvals.py): each channel is used only when configured.

@description('Post approval requests to Teams through a Workflows webhook; its URL is the secret teamsWebhookUrl.')
param useTeamsApprovals bool = false

@description('TIERONE_SLACK_CHANNEL: channel id for approval requests. Empty: Slack is not used (then no Slack secrets are referenced).')
param slackChannel string = ''

@description('TIERONE_SLACK_API_URL (default https://slack.com/api/).')
param slackApiUrl string = ''

@description('TIERONE_APPROVAL_SENDER: mailbox (UPN) that sends approval e-mail through Graph. Empty: no approval e-mail.')
param approvalSender string = ''

@description('TIERONE_APPROVAL_TTL_MINUTES (default 60).')
param approvalTtlMinutes string = ''

@description('TIERONE_APPROVAL_CHANNEL_WAIT_MINUTES (default 15): wait before trying the next channel.')
param approvalChannelWaitMinutes string = ''

@description('TIERONE_CONFIRMATION_TTL_MINUTES (default 30): how long an out-of-band confirmation link works.')
param confirmationTtlMinutes string = ''

// ConnectWise PSA: used when connectwiseApiUrl is set.

@description('CONNECTWISE_API_URL, e.g. https://api-na.myconnectwise.net/v2025_1/apis/3.0. Empty: ConnectWise is not used.')
param connectwiseApiUrl string = ''

@description('CONNECTWISE_COMPANY_ID: your ConnectWise login company id.')
param connectwiseCompanyId string = ''

@description('CONNECTWISE_PUBLIC_KEY: the API member\'s public key.')
param connectwisePublicKey string = ''

@description('CONNECTWISE_CALLBACK_ORIGIN: the only origin signing keys are fetched from, e.g. https://na.myconnectwise.net.')
param connectwiseCallbackOrigin string = ''

@description('CONNECTWISE_API_VERSION (default 2025.1).')
param connectwiseApiVersion string = ''

@description('CONNECTWISE_API_MEMBER (default tierone-api).')
param connectwiseApiMember string = ''

@description('CONNECTWISE_CLOSED_STATUS (default: the board\'s first closed status).')
param connectwiseClosedStatus string = ''

@description('CONNECTWISE_ESCALATION_STATUS (default: leave the status).')
param connectwiseEscalationStatus string = ''

@description('CONNECTWISE_WORK_TYPE: work type name for time entries.')
param connectwiseWorkType string = ''

@description('CONNECTWISE_BOARDS: the boards TierOne works, names or ids, comma-separated. Empty: every board.')
param connectwiseBoards string = ''

@description('CONNECTWISE_TENANT_FIELD (default Microsoft Tenant ID).')
param connectwiseTenantField string = ''

// Autotask: used when autotaskUsername is set.

@description('AUTOTASK_USERNAME: the API-only user\'s e-mail. Empty: Autotask is not used.')
param autotaskUsername string = ''

@description('AUTOTASK_API_RESOURCE_ID: the API user\'s resource id.')
param autotaskApiResourceId string = ''

@description('AUTOTASK_API_URL (default: discovered from the user name).')
param autotaskApiUrl string = ''

@description('AUTOTASK_ZONE_LOOKUP_URL (default Autotask\'s zoneInformation endpoint).')
param autotaskZoneLookupUrl string = ''

@description('AUTOTASK_COMPLETE_STATUS (default 5).')
param autotaskCompleteStatus string = ''

@description('AUTOTASK_ESCALATION_QUEUE_ID: queue for escalated tickets.')
param autotaskEscalationQueueId string = ''

@description('AUTOTASK_NOTE_TYPE (default 1).')
param autotaskNoteType string = ''

@description('AUTOTASK_TIME_ROLE_ID: role for time entries.')
param autotaskTimeRoleId string = ''

@description('AUTOTASK_QUEUES: the queues TierOne works, names or ids, comma-separated. Empty: every queue.')
param autotaskQueues string = ''

@description('AUTOTASK_TENANT_UDF (default Microsoft Tenant ID).')
param autotaskTenantUdf string = ''

// HaloPSA: used when halopsaUrl is set.

@description('HALOPSA_URL: the instance URL. Empty: HaloPSA is not used.')
param halopsaUrl string = ''

@description('HALOPSA_CLIENT_ID: the API application\'s client id.')
param halopsaClientId string = ''

@description('HALOPSA_API_AGENT_ID: the API agent\'s id.')
param halopsaApiAgentId string = ''

@description('HALOPSA_TENANT: hosted Halo tenant name (default read from /api/authinfo).')
param halopsaTenant string = ''

@description('HALOPSA_WEBHOOK_USERNAME (default tierone).')
param halopsaWebhookUsername string = ''

@description('HALOPSA_CLOSED_STATUS_ID (default 9).')
param halopsaClosedStatusId string = ''

@description('HALOPSA_NOTE_OUTCOME_ID (default 7).')
param halopsaNoteOutcomeId string = ''

@description('HALOPSA_ESCALATION_TEAM: team for escalated tickets.')
param halopsaEscalationTeam string = ''

@description('HALOPSA_TEAMS: the teams whose tickets TierOne works, comma-separated. Empty: every team.')
param halopsaTeams string = ''

// Secrets. main.bicepparam reads them from the deployer's environment; each is stored in Key Vault
// when given and left untouched when empty, and the app settings only ever hold references.

@secure()
@description('TIERONE_SECRET_ENCRYPTION_KEY: base64 of 32 random bytes (required on the first deployment).')
param secretEncryptionKey string

@secure()
@description('CONNECTWISE_PRIVATE_KEY.')
param connectwisePrivateKey string

@secure()
@description('CONNECTWISE_CLIENT_ID (clientId from developer.connectwise.com).')
param connectwiseClientId string

@secure()
@description('AUTOTASK_SECRET.')
param autotaskSecret string

@secure()
@description('AUTOTASK_INTEGRATION_CODE.')
param autotaskIntegrationCode string

@secure()
@description('AUTOTASK_WEBHOOK_SECRET (you choose it; `tierone psa register autotask` sets it in Autotask).')
param autotaskWebhookSecret string

@secure()
@description('HALOPSA_CLIENT_SECRET.')
param halopsaClientSecret string

@secure()
@description('HALOPSA_WEBHOOK_PASSWORD (you choose it; `tierone psa register halopsa` sets it in Halo).')
param halopsaWebhookPassword string

@secure()
@description('TIERONE_TEAMS_WEBHOOK_URL: the Workflows webhook URL (its sig= is a credential). Empty: keep the stored value.')
param teamsWebhookUrl string

@secure()
@description('TIERONE_SLACK_BOT_TOKEN (xoxb-...). Empty: keep the stored value.')
param slackBotToken string

@secure()
@description('TIERONE_SLACK_SIGNING_SECRET (the Slack app\'s signing secret). Empty: keep the stored value.')
param slackSigningSecret string

// ---------------------------------------------------------------------------------------------
// Names and fixed lists
// ---------------------------------------------------------------------------------------------

var token = toLower(uniqueString(subscription().id, resourceGroup().id, name))
var functionAppName = '${name}-${token}'
var storageAccountName = take('st${replace(toLower(name), '-', '')}${token}', 24)
var keyVaultName = take('kv-${name}-${token}', 24)
var appInsightsName = 'appi-${name}-${token}'

// tierone/storage.py (ALL_TABLES).
var tableNames = [
  'deliveries'
  'tickets'
  'tenants'
  'secrets'
  'audit'
  'ledger'
  'models'
  'approvals'
  'policies'
]

// The worker's queue and the poison queue its fifth failure lands in (host.json maxDequeueCount).
var queueNames = [
  'tickets'
  'tickets-poison'
]

// Reachable without an Entra sign-in: PSA webhooks, one-time credential pages, out-of-band confirm
// pages (the link went to a registered address; the customer's users have no account in the MSP's
// tenant) and Slack's signed interactivity callback (authentication.bicep).
var anonymousPaths = [
  '/api/webhooks/*'
  '/api/secrets/*'
  '/api/confirm/*'
  '/api/slack/interactions'
]

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

module identity 'modules/identity.bicep' = {
  name: 'tierone-identity'
  params: {
    name: 'id-${name}-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'tierone-monitoring'
  params: {
    workspaceName: 'log-${name}-${token}'
    appInsightsName: appInsightsName
    location: location
    retentionInDays: logRetentionInDays
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'tierone-storage'
  params: {
    name: storageAccountName
    location: location
    skuName: storageSku
    tables: tableNames
    queues: queueNames
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
  }
}

module keyVault 'modules/keyVault.bicep' = {
  name: 'tierone-key-vault'
  params: {
    name: keyVaultName
    location: location
    workspaceId: monitoring.outputs.workspaceId
    tags: tags
    secretEncryptionKey: secretEncryptionKey
    connectwisePrivateKey: connectwisePrivateKey
    connectwiseClientId: connectwiseClientId
    autotaskSecret: autotaskSecret
    autotaskIntegrationCode: autotaskIntegrationCode
    autotaskWebhookSecret: autotaskWebhookSecret
    halopsaClientSecret: halopsaClientSecret
    halopsaWebhookPassword: halopsaWebhookPassword
    teamsWebhookUrl: teamsWebhookUrl
    slackBotToken: slackBotToken
    slackSigningSecret: slackSigningSecret
  }
}

module roles 'modules/roleAssignments.bicep' = {
  name: 'tierone-role-assignments'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    adminPrincipalId: adminPrincipalId
    adminPrincipalType: adminPrincipalType
  }
}

module plan 'modules/plan.bicep' = {
  name: 'tierone-plan'
  params: {
    name: 'plan-${name}-${token}'
    location: location
    tags: tags
  }
}

module functionApp 'modules/functionApp.bicep' = {
  name: 'tierone-function-app'
  params: {
    name: functionAppName
    location: location
    planId: plan.outputs.id
    identityId: identity.outputs.id
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    pythonVersion: pythonVersion
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    tags: tags
  }
}

module entra 'modules/entra.bicep' = if (deployEntra) {
  name: 'tierone-entra'
  params: {
    name: '${name}-${token}'
    appDisplayName: appDisplayName
    managedIdentityPrincipalId: identity.outputs.principalId
    siteHostName: functionApp.outputs.defaultHostName
    tokenExchangeAudience: tokenExchangeAudience
    graphApplicationPermissions: graphApplicationPermissions
    techniciansPrincipalId: techniciansPrincipalId
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

var resolvedAppClientId = deployEntra ? entra.outputs.appClientId : appClientId
var resolvedSignInClientId = deployEntra ? entra.outputs.signInClientId : signInClientId
var siteUrl = 'https://${functionApp.outputs.defaultHostName}'
var resolvedPublicBaseUrl = empty(publicBaseUrl) ? siteUrl : publicBaseUrl
var useConnectWise = !empty(connectwiseApiUrl)
var useAutotask = !empty(autotaskUsername)
var useHaloPsa = !empty(halopsaUrl)
var useSlackApprovals = !empty(slackChannel)
var vaultUri = keyVault.outputs.uri

// ---------------------------------------------------------------------------------------------
// App settings: every setting tierone/settings.py reads (tests/infra check it), secrets only as
// Key Vault references. Optional ones are left out when empty so TierOne's defaults apply.
// ---------------------------------------------------------------------------------------------

// The Functions host and the SDK clients reach storage with the managed identity (no keys).
var hostSettings = {
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identity.outputs.clientId
  AzureWebJobsStorage__blobServiceUri: storage.outputs.blobEndpoint
  AzureWebJobsStorage__queueServiceUri: storage.outputs.queueEndpoint
  AzureWebJobsStorage__tableServiceUri: storage.outputs.tableEndpoint
  AZURE_CLIENT_ID: identity.outputs.clientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.outputs.clientId};Authorization=AAD'
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identity.outputs.clientId
  WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId
}

var tieroneSettings = {
  TIERONE_PUBLIC_BASE_URL: resolvedPublicBaseUrl
  TIERONE_SECRET_ENCRYPTION_KEY: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/tierone-secret-encryption-key/)'
  TIERONE_GRAPH_AUTH: 'federated'
  TIERONE_APP_CLIENT_ID: resolvedAppClientId
  TIERONE_MANAGED_IDENTITY_CLIENT_ID: identity.outputs.clientId
  // Approvers sign in here (App Service Authentication) and the approval mailbox lives here.
  TIERONE_MSP_TENANT_ID: tenant().tenantId
}

var tuningSettings = union(
  empty(secretLinkTtlMinutes) ? {} : { TIERONE_SECRET_LINK_TTL_MINUTES: secretLinkTtlMinutes },
  empty(maxWebhookBytes) ? {} : { TIERONE_MAX_WEBHOOK_BYTES: maxWebhookBytes },
  empty(retryBaseSeconds) ? {} : { TIERONE_RETRY_BASE_SECONDS: retryBaseSeconds },
  empty(retryMaxDeferrals) ? {} : { TIERONE_RETRY_MAX_DEFERRALS: retryMaxDeferrals },
  empty(reconcileLookbackMinutes) ? {} : { TIERONE_RECONCILE_LOOKBACK_MINUTES: reconcileLookbackMinutes },
  empty(graphBaseUrl) ? {} : { GRAPH_BASE_URL: graphBaseUrl },
  empty(graphScope) ? {} : { GRAPH_SCOPE: graphScope },
  empty(authorityHost) ? {} : { AZURE_AUTHORITY_HOST: authorityHost },
  empty(exchangeScope) ? {} : { EXCHANGE_SCOPE: exchangeScope },
  empty(exchangeAdminUrl) ? {} : { EXCHANGE_ADMIN_URL: exchangeAdminUrl },
  empty(openaiEndpoint) ? {} : { TIERONE_OPENAI_ENDPOINT: openaiEndpoint },
  empty(openaiDeployment) ? {} : { TIERONE_OPENAI_DEPLOYMENT: openaiDeployment },
  empty(openaiApiVersion) ? {} : { TIERONE_OPENAI_API_VERSION: openaiApiVersion },
  empty(openaiScope) ? {} : { TIERONE_OPENAI_SCOPE: openaiScope },
  empty(openaiTimeoutSeconds) ? {} : { TIERONE_OPENAI_TIMEOUT_SECONDS: openaiTimeoutSeconds },
  empty(triageCategoryMap) ? {} : { TIERONE_TRIAGE_CATEGORY_MAP: triageCategoryMap },
  empty(approvalSender) ? {} : { TIERONE_APPROVAL_SENDER: approvalSender },
  empty(approvalTtlMinutes) ? {} : { TIERONE_APPROVAL_TTL_MINUTES: approvalTtlMinutes },
  empty(approvalChannelWaitMinutes) ? {} : { TIERONE_APPROVAL_CHANNEL_WAIT_MINUTES: approvalChannelWaitMinutes },
  empty(confirmationTtlMinutes) ? {} : { TIERONE_CONFIRMATION_TTL_MINUTES: confirmationTtlMinutes }
)

// Approval channels: a Key Vault reference is written only when its channel is used, because a
// reference to a secret never stored would stay literal text and make the channel look configured.
var teamsSettings = useTeamsApprovals ? {
  TIERONE_TEAMS_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/teams-webhook-url/)'
} : {}

var slackRequired = {
  TIERONE_SLACK_CHANNEL: slackChannel
  TIERONE_SLACK_BOT_TOKEN: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/slack-bot-token/)'
  TIERONE_SLACK_SIGNING_SECRET: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/slack-signing-secret/)'
}

var slackSettings = useSlackApprovals ? union(
  slackRequired,
  empty(slackApiUrl) ? {} : { TIERONE_SLACK_API_URL: slackApiUrl }
) : {}

// Set whenever ConnectWise is used (empty ones are reported by name when TierOne starts).
var connectwiseRequired = {
  CONNECTWISE_API_URL: connectwiseApiUrl
  CONNECTWISE_COMPANY_ID: connectwiseCompanyId
  CONNECTWISE_PUBLIC_KEY: connectwisePublicKey
  CONNECTWISE_PRIVATE_KEY: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/connectwise-private-key/)'
  CONNECTWISE_CLIENT_ID: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/connectwise-client-id/)'
  CONNECTWISE_CALLBACK_ORIGIN: connectwiseCallbackOrigin
}

var connectwiseSettings = useConnectWise ? union(
  connectwiseRequired,
  empty(connectwiseApiVersion) ? {} : { CONNECTWISE_API_VERSION: connectwiseApiVersion },
  empty(connectwiseApiMember) ? {} : { CONNECTWISE_API_MEMBER: connectwiseApiMember },
  empty(connectwiseClosedStatus) ? {} : { CONNECTWISE_CLOSED_STATUS: connectwiseClosedStatus },
  empty(connectwiseEscalationStatus) ? {} : { CONNECTWISE_ESCALATION_STATUS: connectwiseEscalationStatus },
  empty(connectwiseWorkType) ? {} : { CONNECTWISE_WORK_TYPE: connectwiseWorkType },
  empty(connectwiseBoards) ? {} : { CONNECTWISE_BOARDS: connectwiseBoards },
  empty(connectwiseTenantField) ? {} : { CONNECTWISE_TENANT_FIELD: connectwiseTenantField }
) : {}

// Set whenever Autotask is used (empty ones are reported by name when TierOne starts).
var autotaskRequired = {
  AUTOTASK_USERNAME: autotaskUsername
  AUTOTASK_SECRET: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/autotask-secret/)'
  AUTOTASK_INTEGRATION_CODE: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/autotask-integration-code/)'
  AUTOTASK_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/autotask-webhook-secret/)'
}

var autotaskSettings = useAutotask ? union(
  autotaskRequired,
  empty(autotaskApiResourceId) ? {} : { AUTOTASK_API_RESOURCE_ID: autotaskApiResourceId },
  empty(autotaskApiUrl) ? {} : { AUTOTASK_API_URL: autotaskApiUrl },
  empty(autotaskZoneLookupUrl) ? {} : { AUTOTASK_ZONE_LOOKUP_URL: autotaskZoneLookupUrl },
  empty(autotaskCompleteStatus) ? {} : { AUTOTASK_COMPLETE_STATUS: autotaskCompleteStatus },
  empty(autotaskEscalationQueueId) ? {} : { AUTOTASK_ESCALATION_QUEUE_ID: autotaskEscalationQueueId },
  empty(autotaskNoteType) ? {} : { AUTOTASK_NOTE_TYPE: autotaskNoteType },
  empty(autotaskTimeRoleId) ? {} : { AUTOTASK_TIME_ROLE_ID: autotaskTimeRoleId },
  empty(autotaskQueues) ? {} : { AUTOTASK_QUEUES: autotaskQueues },
  empty(autotaskTenantUdf) ? {} : { AUTOTASK_TENANT_UDF: autotaskTenantUdf }
) : {}

// Set whenever HaloPSA is used (empty ones are reported by name when TierOne starts).
var halopsaRequired = {
  HALOPSA_URL: halopsaUrl
  HALOPSA_CLIENT_ID: halopsaClientId
  HALOPSA_CLIENT_SECRET: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/halopsa-client-secret/)'
  HALOPSA_WEBHOOK_PASSWORD: '@Microsoft.KeyVault(SecretUri=${vaultUri}secrets/halopsa-webhook-password/)'
}

var halopsaSettings = useHaloPsa ? union(
  halopsaRequired,
  empty(halopsaApiAgentId) ? {} : { HALOPSA_API_AGENT_ID: halopsaApiAgentId },
  empty(halopsaTenant) ? {} : { HALOPSA_TENANT: halopsaTenant },
  empty(halopsaWebhookUsername) ? {} : { HALOPSA_WEBHOOK_USERNAME: halopsaWebhookUsername },
  empty(halopsaClosedStatusId) ? {} : { HALOPSA_CLOSED_STATUS_ID: halopsaClosedStatusId },
  empty(halopsaNoteOutcomeId) ? {} : { HALOPSA_NOTE_OUTCOME_ID: halopsaNoteOutcomeId },
  empty(halopsaEscalationTeam) ? {} : { HALOPSA_ESCALATION_TEAM: halopsaEscalationTeam },
  empty(halopsaTeams) ? {} : { HALOPSA_TEAMS: halopsaTeams }
) : {}

module appSettings 'modules/appSettings.bicep' = {
  name: 'tierone-app-settings'
  params: {
    siteName: functionApp.outputs.name
    settings: union(hostSettings, tieroneSettings, tuningSettings, teamsSettings, slackSettings, connectwiseSettings, autotaskSettings, halopsaSettings)
  }
  dependsOn: [
    roles
    monitoring
  ]
}

module authentication 'modules/authentication.bicep' = {
  name: 'tierone-authentication'
  params: {
    siteName: functionApp.outputs.name
    signInClientId: resolvedSignInClientId
    excludedPaths: anonymousPaths
  }
  dependsOn: [
    appSettings
  ]
}

// ---------------------------------------------------------------------------------------------
// Outputs: what the next steps need. No keys, secrets or connection strings: a webhook URL gets
// its ?code=<function key> from `az functionapp function keys list` (docs/deploy.md).
// ---------------------------------------------------------------------------------------------

output functionAppName string = functionApp.outputs.name
output publicBaseUrl string = resolvedPublicBaseUrl
output webhookUrls object = {
  connectwise: '${siteUrl}/api/webhooks/connectwise'
  autotask: '${siteUrl}/api/webhooks/autotask'
  halopsa: '${siteUrl}/api/webhooks/halopsa'
}
output webhookFunctionNames object = {
  connectwise: 'connectwise_webhook'
  autotask: 'autotask_webhook'
  halopsa: 'halopsa_webhook'
}
output appClientId string = resolvedAppClientId
output signInClientId string = resolvedSignInClientId
output tenantId string = tenant().tenantId
output managedIdentityClientId string = identity.outputs.clientId
output managedIdentityPrincipalId string = identity.outputs.principalId
output storageAccountName string = storage.outputs.name
output tableEndpoint string = storage.outputs.tableEndpoint
output keyVaultName string = keyVault.outputs.name
