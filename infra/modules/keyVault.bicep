// Key Vault (Azure RBAC, no access policies) for the values TierOne must keep secret: the key that
// encrypts one-time links and each PSA's credentials. App settings refer to them with
// @Microsoft.KeyVault(SecretUri=...) references, resolved by the platform with the function app's
// user-assigned identity (keyVaultReferenceIdentity; Key Vault Secrets User on this vault).
//
// A secret is written only when its value is passed in (main.bicepparam reads them from the
// deployer's environment), so a later deployment without them leaves the stored values untouched.

@description('Name of the vault (3–24 letters, digits and hyphens).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Log Analytics workspace that receives the vault\'s audit events.')
param workspaceId string

@description('Tags for the resources.')
param tags object = {}

@secure()
@description('TIERONE_SECRET_ENCRYPTION_KEY: base64 of 32 random bytes. Empty: keep the stored value.')
param secretEncryptionKey string

@secure()
@description('CONNECTWISE_PRIVATE_KEY. Empty: keep the stored value.')
param connectwisePrivateKey string

@secure()
@description('CONNECTWISE_CLIENT_ID. Empty: keep the stored value.')
param connectwiseClientId string

@secure()
@description('AUTOTASK_SECRET. Empty: keep the stored value.')
param autotaskSecret string

@secure()
@description('AUTOTASK_INTEGRATION_CODE. Empty: keep the stored value.')
param autotaskIntegrationCode string

@secure()
@description('AUTOTASK_WEBHOOK_SECRET. Empty: keep the stored value.')
param autotaskWebhookSecret string

@secure()
@description('HALOPSA_CLIENT_SECRET. Empty: keep the stored value.')
param halopsaClientSecret string

@secure()
@description('HALOPSA_WEBHOOK_PASSWORD. Empty: keep the stored value.')
param halopsaWebhookPassword string

@secure()
@description('TIERONE_TEAMS_WEBHOOK_URL. Empty: keep the stored value.')
param teamsWebhookUrl string = ''

@secure()
@description('TIERONE_SLACK_BOT_TOKEN. Empty: keep the stored value.')
param slackBotToken string = ''

@secure()
@description('TIERONE_SLACK_SIGNING_SECRET. Empty: keep the stored value.')
param slackSigningSecret string = ''

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource secretEncryptionKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(secretEncryptionKey)) {
  parent: vault
  name: 'tierone-secret-encryption-key'
  properties: {
    value: secretEncryptionKey
    contentType: 'text/plain'
  }
}

resource connectwisePrivateKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(connectwisePrivateKey)) {
  parent: vault
  name: 'connectwise-private-key'
  properties: {
    value: connectwisePrivateKey
    contentType: 'text/plain'
  }
}

resource connectwiseClientIdSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(connectwiseClientId)) {
  parent: vault
  name: 'connectwise-client-id'
  properties: {
    value: connectwiseClientId
    contentType: 'text/plain'
  }
}

resource autotaskSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(autotaskSecret)) {
  parent: vault
  name: 'autotask-secret'
  properties: {
    value: autotaskSecret
    contentType: 'text/plain'
  }
}

resource autotaskIntegrationCodeSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(autotaskIntegrationCode)) {
  parent: vault
  name: 'autotask-integration-code'
  properties: {
    value: autotaskIntegrationCode
    contentType: 'text/plain'
  }
}

resource autotaskWebhookSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(autotaskWebhookSecret)) {
  parent: vault
  name: 'autotask-webhook-secret'
  properties: {
    value: autotaskWebhookSecret
    contentType: 'text/plain'
  }
}

resource halopsaClientSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(halopsaClientSecret)) {
  parent: vault
  name: 'halopsa-client-secret'
  properties: {
    value: halopsaClientSecret
    contentType: 'text/plain'
  }
}

resource halopsaWebhookPasswordSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(halopsaWebhookPassword)) {
  parent: vault
  name: 'halopsa-webhook-password'
  properties: {
    value: halopsaWebhookPassword
    contentType: 'text/plain'
  }
}

resource teamsWebhookUrlSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(teamsWebhookUrl)) {
  parent: vault
  name: 'teams-webhook-url'
  properties: {
    value: teamsWebhookUrl
    contentType: 'text/plain'
  }
}

resource slackBotTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(slackBotToken)) {
  parent: vault
  name: 'slack-bot-token'
  properties: {
    value: slackBotToken
    contentType: 'text/plain'
  }
}

resource slackSigningSecretSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(slackSigningSecret)) {
  parent: vault
  name: 'slack-signing-secret'
  properties: {
    value: slackSigningSecret
    contentType: 'text/plain'
  }
}

// Every read of a secret, by the platform or a person, lands in Log Analytics.
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-events'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
