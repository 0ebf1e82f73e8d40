// The function app's only identity. It reaches storage, Key Vault and Application Insights through
// Azure RBAC, and it is the federated credential of TierOne's Entra app registrations, so nothing
// in this deployment holds a key, a connection string with a key, or a client secret.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags for the resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
