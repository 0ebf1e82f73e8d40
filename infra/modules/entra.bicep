// TierOne's two Entra app registrations in the MSP's tenant, with the Microsoft Graph Bicep extension
// (alias microsoftGraphV1 in infra/bicepconfig.json). No client secret or certificate anywhere: the
// function app's user-assigned managed identity is the federated credential of both.
//
// 1. TierOne (multi-tenant): the identity TierOne acts as in each customer's Microsoft 365 tenant.
//    Its requiredResourceAccess lists exactly the Graph application permissions in
//    docs/permissions.md; each customer grants them (and the User Administrator role) in their own
//    tenant — see docs/deploy.md, "Connect a customer tenant".
// 2. TierOne sign-in (single-tenant): App Service Authentication for the approval and dashboard
//    pages. Only the users or groups assigned to it may sign in (appRoleAssignmentRequired).
//
// The deployer needs Application Administrator or Cloud Application Administrator in the MSP's
// tenant (create registrations and federated credentials, grant the sign-in app's delegated
// consent, assign the technicians' group). Without it, deploy with deployEntra = false and follow
// "Entra ID by hand" in docs/deploy.md.

extension microsoftGraphV1

@description('Prefix of the registrations\' unique names (uniqueName is their idempotency key).')
param name string

@description('Display name of the multi-tenant registration, as customers see it on the consent screen.')
param appDisplayName string

@description('Principal (object) id of the function app\'s user-assigned managed identity.')
param managedIdentityPrincipalId string

@description('Default host name of the function app (for the sign-in redirect URI).')
param siteHostName string

@description('Audience of the managed identity\'s token exchange (public cloud; differs in national clouds).')
param tokenExchangeAudience string = 'api://AzureADTokenExchange'

@description('Microsoft Graph application permissions TierOne requests from each customer tenant.')
param graphApplicationPermissions array

@description('Object id of the group (or user) allowed to sign in to the approval and dashboard pages. Empty: assign later.')
param techniciansPrincipalId string = ''

var graphAppId = '00000003-0000-0000-c000-000000000000'
var issuer = '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
var signInScopes = 'openid profile email offline_access User.Read'

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: '${name}-graph'
  displayName: appDisplayName
  description: 'TierOne L1 automation: acts in customer Microsoft 365 tenants with the permissions each customer grants.'
  signInAudience: 'AzureADMultipleOrgs'
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: [for permission in graphApplicationPermissions: {
        id: filter(graph.appRoles, role => role.value == permission)[0].id
        type: 'Role'
      }]
    }
  ]
}

resource appFederatedCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${app.uniqueName}/function-app-identity'
  description: 'The TierOne function app\'s user-assigned managed identity.'
  issuer: issuer
  subject: managedIdentityPrincipalId
  audiences: [
    tokenExchangeAudience
  ]
}

resource appServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
}

resource signIn 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: '${name}-sign-in'
  displayName: '${appDisplayName} sign-in'
  description: 'Sign-in to TierOne\'s approval and dashboard pages (App Service Authentication).'
  signInAudience: 'AzureADMyOrg'
  web: {
    redirectUris: [
      'https://${siteHostName}/.auth/login/aad/callback'
    ]
    implicitGrantSettings: {
      enableIdTokenIssuance: true
      enableAccessTokenIssuance: false
    }
  }
  requiredResourceAccess: [
    {
      resourceAppId: graphAppId
      resourceAccess: [
        {
          id: filter(graph.oauth2PermissionScopes, scope => scope.value == 'User.Read')[0].id
          type: 'Scope'
        }
      ]
    }
  ]
}

resource signInFederatedCredential 'Microsoft.Graph/applications/federatedIdentityCredentials@v1.0' = {
  name: '${signIn.uniqueName}/function-app-identity'
  description: 'The TierOne function app\'s user-assigned managed identity (App Service Authentication).'
  issuer: issuer
  subject: managedIdentityPrincipalId
  audiences: [
    tokenExchangeAudience
  ]
}

resource signInServicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: signIn.appId
  appRoleAssignmentRequired: true
}

// Tenant-wide consent to the sign-in scopes, so technicians are not asked to consent themselves.
resource signInConsent 'Microsoft.Graph/oauth2PermissionGrants@v1.0' = {
  clientId: signInServicePrincipal.id
  consentType: 'AllPrincipals'
  resourceId: graph.id
  scope: signInScopes
}

resource techniciansAssignment 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (!empty(techniciansPrincipalId)) {
  appRoleId: '00000000-0000-0000-0000-000000000000'
  principalId: techniciansPrincipalId
  resourceId: signInServicePrincipal.id
}

output appClientId string = app.appId
output signInClientId string = signIn.appId
