// The function app's app settings, applied as one `appsettings` resource (it replaces the whole set).
// main.bicep builds them; keeping them apart from the site lets them wait for the role assignments
// (Key Vault references resolve with the identity's Key Vault Secrets User role) and the Entra
// registrations (TIERONE_APP_CLIENT_ID).

@description('Name of the function app.')
param siteName string

@description('App settings: name → value. Secrets appear only as Key Vault references.')
param settings object

resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: siteName
}

resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: settings
}
