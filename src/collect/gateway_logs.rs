//! Gateway request logs (`ApiManagementGatewayLogs` and its other shapes).
