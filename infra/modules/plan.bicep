// The Flex Consumption (FC1) plan: Microsoft's current serverless plan for new function apps (Linux).

@description('Name of the plan.')
param name string

@description('Azure region (must offer Flex Consumption: `az functionapp list-flexconsumption-locations`).')
param location string

@description('Spread instances across availability zones (needs a region with zones and ZRS storage).')
param zoneRedundant bool = false

@description('Tags for the resource.')
param tags object = {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

output id string = plan.id
