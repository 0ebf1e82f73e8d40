// App Service Authentication (Easy Auth) in front of the approval and dashboard pages.
//
// Every path requires an Entra sign-in from the MSP's own tenant EXCEPT the excluded ones, which
// stay reachable without it: the PSA webhooks (/api/webhooks/*: function key plus each PSA's own
// signature or credentials) and the one-time credential pages (/api/secrets/*: the person whose
// password was just reset cannot sign in, and the link itself is the capability). So approval
// (/api/approvals/*) and dashboard (/api/dashboard/*) pages, and any route added later, are
// protected by default; making a new route anonymous is a deliberate change to excludedPaths.
//
// Sign-in uses TierOne's sign-in app registration without a client secret: the function app's
// managed identity is that registration's federated credential (app setting
// OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID, set in main.bicep).

@description('Name of the function app.')
param siteName string

@description('Client id of the single-tenant sign-in app registration (entra.bicep, or created by hand).')
param signInClientId string

@description('Paths that stay reachable without signing in (trailing /* matches everything below).')
param excludedPaths array

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource authentication 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: excludedPaths
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: signInClientId
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          defaultAuthorizationPolicy: {
            allowedApplications: []
          }
        }
      }
    }
    login: {
      // Flex Consumption has no shared file system for a token store; the pages read the
      // X-MS-CLIENT-PRINCIPAL* headers that Easy Auth injects (and that callers cannot forge).
      tokenStore: {
        enabled: false
      }
      cookieExpiration: {
        convention: 'FixedTime'
        timeToExpiration: '08:00:00'
      }
      nonce: {
        validateNonce: true
      }
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
  }
}
