//! The simulated instance: one API Management service (`contoso-apim`) with
//! six APIs, 25 operations and nine backend entities (container apps, App
//! Service sites, an internal VM behind an IP literal, a pool with a circuit
//! breaker and an external partner). Plain constant data; scenarios change
//! behaviour, not this list.

pub const SUBSCRIPTION: &str = "6f1d2c3b-4a5e-4f60-8b7c-9d0e1f2a3b4c";
pub const RG_APIM: &str = "rg-apim-prod";
pub const RG_APPS: &str = "rg-apps-prod";
pub const RG_NET: &str = "rg-network-prod";
pub const SERVICE: &str = "contoso-apim";
pub const GATEWAY: &str = "https://contoso-apim.azure-api.net";
pub const REGION: &str = "West Europe";
pub const LOCATION: &str = "westeurope";
pub const NSG: &str = "nsg-apim";
pub const APIM_SUBNET_PREFIX: &str = "10.0.1.0/24";
pub const PAYMENTS_SUBNET_PREFIX: &str = "10.1.2.0/24";
pub const CONTAINER_MEMORY_LIMIT: f64 = 1_073_741_824.0;

pub fn service_id() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG_APIM}/providers/Microsoft.ApiManagement/service/{SERVICE}"
    )
}

pub fn apim_subnet_id() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG_NET}/providers/Microsoft.Network/virtualNetworks/vnet-hub/subnets/snet-apim"
    )
}

pub fn nsg_id() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG_NET}/providers/Microsoft.Network/networkSecurityGroups/{NSG}"
    )
}

/// How an API reaches its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The API's `serviceUrl` (logs carry no BackendId).
    ServiceUrl,
    /// `set-backend-service backend-id="…"` in the API policy.
    BackendId(usize),
    /// `set-backend-service base-url="…"` in the API policy.
    BaseUrl(usize),
}

pub struct ApiDef {
    pub id: &'static str,
    pub display: &'static str,
    pub path: &'static str,
    /// Index into `BACKENDS` of the backend serving it by default.
    pub backend: usize,
    pub route: Route,
}

pub struct OpDef {
    /// Index into `APIS`.
    pub api: usize,
    pub id: &'static str,
    pub display: &'static str,
    pub method: &'static str,
    /// The URL template; `{id}`/`{sku}` are filled with numbers.
    pub template: &'static str,
    /// Requests per minute at the daily peak with `--scale 1`.
    pub weight: f64,
    pub median_ms: f64,
    pub sigma: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppKind {
    ContainerApp,
    AppService,
    /// A VM or an external service: no app metrics.
    Plain,
}

pub struct BackendDef {
    pub id: &'static str,
    pub url: &'static str,
    pub kind: AppKind,
    /// Pool members (indexes into `BACKENDS`) with weights; empty for single.
    pub pool: &'static [(usize, u32)],
    pub breaker: bool,
}

impl BackendDef {
    pub fn resource_id(&self) -> Option<String> {
        match self.kind {
            AppKind::ContainerApp => Some(format!(
                "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG_APPS}/providers/Microsoft.App/containerApps/{}",
                self.id
            )),
            AppKind::AppService => Some(format!(
                "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RG_APPS}/providers/Microsoft.Web/sites/{}",
                self.id
            )),
            AppKind::Plain => None,
        }
    }
}

pub const B_ORDERS: usize = 0;
pub const B_INVENTORY: usize = 1;
pub const B_CATALOG: usize = 2;
pub const B_CATALOG_LEGACY: usize = 3;
pub const B_PAYMENTS: usize = 4;
pub const B_USERS_WEU: usize = 5;
pub const B_USERS_NEU: usize = 6;
pub const B_USERS_POOL: usize = 7;
pub const B_CARRIER: usize = 8;

pub const BACKENDS: [BackendDef; 9] = [
    BackendDef {
        id: "orders-app",
        url: "https://orders-app.kindsea-7d1e42.westeurope.azurecontainerapps.io/api",
        kind: AppKind::ContainerApp,
        pool: &[],
        breaker: true,
    },
    BackendDef {
        id: "inventory-app",
        url: "https://inventory-app.kindsea-7d1e42.westeurope.azurecontainerapps.io",
        kind: AppKind::ContainerApp,
        pool: &[],
        breaker: false,
    },
    BackendDef {
        id: "catalog-web",
        url: "https://catalog-web.azurewebsites.net/v2",
        kind: AppKind::AppService,
        pool: &[],
        breaker: false,
    },
    BackendDef {
        id: "catalog-legacy",
        url: "https://catalog-legacy.azurewebsites.net/v1",
        kind: AppKind::AppService,
        pool: &[],
        breaker: false,
    },
    BackendDef {
        id: "payments-svc",
        url: "https://10.1.2.4/api",
        kind: AppKind::Plain,
        pool: &[],
        breaker: false,
    },
    BackendDef {
        id: "users-app-weu",
        url: "https://users-app-weu.kindsea-7d1e42.westeurope.azurecontainerapps.io",
        kind: AppKind::ContainerApp,
        pool: &[],
        breaker: true,
    },
    BackendDef {
        id: "users-app-neu",
        url: "https://users-app-neu.mossyrock-31c9a0.northeurope.azurecontainerapps.io",
        kind: AppKind::ContainerApp,
        pool: &[],
        breaker: true,
    },
    BackendDef {
        id: "users-pool",
        url: "",
        kind: AppKind::Plain,
        pool: &[(B_USERS_WEU, 3), (B_USERS_NEU, 1)],
        breaker: false,
    },
    BackendDef {
        id: "carrier-hub",
        url: "https://api.carrierhub.example.net/v3",
        kind: AppKind::Plain,
        pool: &[],
        breaker: false,
    },
];

pub const A_ORDERS: usize = 0;
pub const A_INVENTORY: usize = 1;
pub const A_CATALOG: usize = 2;
pub const A_PAYMENTS: usize = 3;
pub const A_USERS: usize = 4;
pub const A_SHIPPING: usize = 5;

pub const APIS: [ApiDef; 6] = [
    ApiDef {
        id: "orders-api",
        display: "Orders API",
        path: "orders",
        backend: B_ORDERS,
        route: Route::BackendId(B_ORDERS),
    },
    ApiDef {
        id: "inventory-api",
        display: "Inventory API",
        path: "inventory",
        backend: B_INVENTORY,
        route: Route::BackendId(B_INVENTORY),
    },
    ApiDef {
        id: "catalog-api",
        display: "Catalog API",
        path: "catalog",
        backend: B_CATALOG,
        route: Route::ServiceUrl,
    },
    ApiDef {
        id: "payments-api",
        display: "Payments API",
        path: "payments",
        backend: B_PAYMENTS,
        route: Route::BackendId(B_PAYMENTS),
    },
    ApiDef {
        id: "users-api",
        display: "Users API",
        path: "users",
        backend: B_USERS_POOL,
        route: Route::BackendId(B_USERS_POOL),
    },
    ApiDef {
        id: "shipping-api",
        display: "Shipping API",
        path: "shipping",
        backend: B_CARRIER,
        route: Route::BaseUrl(B_CARRIER),
    },
];

#[allow(clippy::too_many_arguments)] // a table row, read positionally
const fn op(
    api: usize,
    id: &'static str,
    display: &'static str,
    method: &'static str,
    template: &'static str,
    weight: f64,
    median_ms: f64,
    sigma: f64,
) -> OpDef {
    OpDef {
        api,
        id,
        display,
        method,
        template,
        weight,
        median_ms,
        sigma,
    }
}

pub const O_CREATE_ORDER: usize = 2;
pub const O_SEARCH_ORDERS: usize = 4;
pub const O_CHECK_STOCK: usize = 5;
pub const O_RESERVE_STOCK: usize = 7;
pub const O_SEARCH_PRODUCTS: usize = 9;
pub const O_GET_PRODUCT: usize = 10;
pub const O_GET_PRICE: usize = 12;
pub const O_CREATE_SHIPMENT: usize = 24;

pub const OPS: [OpDef; 25] = [
    op(
        A_ORDERS,
        "list-orders",
        "List orders",
        "GET",
        "/",
        25.0,
        60.0,
        0.5,
    ),
    op(
        A_ORDERS,
        "get-order",
        "Get order",
        "GET",
        "/{id}",
        50.0,
        25.0,
        0.45,
    ),
    op(
        A_ORDERS,
        "create-order",
        "Create order",
        "POST",
        "/",
        12.0,
        160.0,
        0.5,
    ),
    op(
        A_ORDERS,
        "cancel-order",
        "Cancel order",
        "POST",
        "/{id}/cancel",
        2.0,
        120.0,
        0.5,
    ),
    op(
        A_ORDERS,
        "search-orders",
        "Search orders",
        "GET",
        "/search",
        20.0,
        4200.0,
        0.3,
    ),
    op(
        A_INVENTORY,
        "check-stock",
        "Check stock",
        "GET",
        "/stock/check",
        60.0,
        35.0,
        0.45,
    ),
    op(
        A_INVENTORY,
        "get-stock",
        "Get stock level",
        "GET",
        "/stock/{sku}",
        30.0,
        20.0,
        0.4,
    ),
    op(
        A_INVENTORY,
        "reserve-stock",
        "Reserve stock",
        "POST",
        "/stock/{sku}/reserve",
        10.0,
        80.0,
        0.5,
    ),
    op(
        A_INVENTORY,
        "list-warehouses",
        "List warehouses",
        "GET",
        "/warehouses",
        2.0,
        15.0,
        0.35,
    ),
    op(
        A_CATALOG,
        "search-products",
        "Search products",
        "GET",
        "/products/search",
        70.0,
        90.0,
        0.6,
    ),
    op(
        A_CATALOG,
        "get-product",
        "Get product",
        "GET",
        "/products/{id}",
        110.0,
        18.0,
        0.5,
    ),
    op(
        A_CATALOG,
        "list-categories",
        "List categories",
        "GET",
        "/categories",
        20.0,
        10.0,
        0.35,
    ),
    op(
        A_CATALOG,
        "get-price",
        "Get price",
        "GET",
        "/products/{id}/price",
        55.0,
        14.0,
        0.4,
    ),
    op(
        A_CATALOG,
        "get-reviews",
        "Get reviews",
        "GET",
        "/products/{id}/reviews",
        15.0,
        55.0,
        0.55,
    ),
    op(
        A_PAYMENTS,
        "authorize-payment",
        "Authorize payment",
        "POST",
        "/authorize",
        10.0,
        240.0,
        0.4,
    ),
    op(
        A_PAYMENTS,
        "capture-payment",
        "Capture payment",
        "POST",
        "/{id}/capture",
        8.0,
        170.0,
        0.4,
    ),
    op(
        A_PAYMENTS,
        "get-payment",
        "Get payment",
        "GET",
        "/{id}",
        12.0,
        30.0,
        0.45,
    ),
    op(
        A_PAYMENTS,
        "refund-payment",
        "Refund payment",
        "POST",
        "/{id}/refund",
        1.0,
        210.0,
        0.45,
    ),
    op(
        A_USERS,
        "get-profile",
        "Get profile",
        "GET",
        "/{id}",
        40.0,
        22.0,
        0.45,
    ),
    op(
        A_USERS, "login", "Log in", "POST", "/login", 15.0, 170.0, 0.45,
    ),
    op(
        A_USERS,
        "refresh-token",
        "Refresh token",
        "POST",
        "/token",
        45.0,
        28.0,
        0.4,
    ),
    op(
        A_USERS,
        "update-profile",
        "Update profile",
        "PUT",
        "/{id}",
        3.0,
        85.0,
        0.5,
    ),
    op(
        A_SHIPPING,
        "get-quote",
        "Get shipping quote",
        "POST",
        "/quotes",
        6.0,
        550.0,
        0.55,
    ),
    op(
        A_SHIPPING,
        "track-shipment",
        "Track shipment",
        "GET",
        "/shipments/{id}/tracking",
        14.0,
        420.0,
        0.6,
    ),
    op(
        A_SHIPPING,
        "create-shipment",
        "Create shipment",
        "POST",
        "/shipments",
        0.5,
        650.0,
        0.5,
    ),
];

/// Who calls: subscription id, product, share of ordinary traffic.
pub struct SubDef {
    pub id: &'static str,
    pub product: &'static str,
    pub share: f64,
}

pub const S_PARTNER_ACME: usize = 3;

pub const SUBSCRIPTIONS: [SubDef; 5] = [
    SubDef {
        id: "mobile-app",
        product: "unlimited",
        share: 0.5,
    },
    SubDef {
        id: "web-shop",
        product: "unlimited",
        share: 0.42,
    },
    SubDef {
        id: "ops-tools",
        product: "unlimited",
        share: 0.07,
    },
    SubDef {
        id: "partner-acme",
        product: "starter",
        share: 0.0,
    },
    SubDef {
        id: "partner-globex",
        product: "starter",
        share: 0.005,
    },
];

/// The partner's catalog sync: requests per minute with `--scale 1`, spread
/// over these catalog operations, all day (not diurnal).
pub const PARTNER_RATE: f64 = 40.0;
pub const PARTNER_OPS: [(usize, f64); 3] = [
    (O_SEARCH_PRODUCTS, 0.3),
    (O_GET_PRODUCT, 0.5),
    (O_GET_PRICE, 0.2),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        assert_eq!(OPS[O_SEARCH_ORDERS].id, "search-orders");
        assert_eq!(OPS[O_CREATE_ORDER].id, "create-order");
        assert_eq!(OPS[O_CHECK_STOCK].id, "check-stock");
        assert_eq!(OPS[O_RESERVE_STOCK].id, "reserve-stock");
        assert_eq!(OPS[O_GET_PRODUCT].id, "get-product");
        assert_eq!(OPS[O_GET_PRICE].id, "get-price");
        assert_eq!(OPS[O_SEARCH_PRODUCTS].id, "search-products");
        assert_eq!(OPS[O_CREATE_SHIPMENT].id, "create-shipment");
        assert_eq!(SUBSCRIPTIONS[S_PARTNER_ACME].id, "partner-acme");
        assert!(OPS.iter().all(|o| o.api < APIS.len()));
        assert!(BACKENDS[B_PAYMENTS].url.starts_with("https://10.1.2.4/"));
        assert_eq!(BACKENDS[B_USERS_POOL].pool.len(), 2);
        let ops_per_api: Vec<usize> = (0..APIS.len())
            .map(|a| OPS.iter().filter(|o| o.api == a).count())
            .collect();
        assert!(ops_per_api.iter().all(|n| *n >= 3), "{ops_per_api:?}");
        assert!(OPS.iter().map(|o| o.weight).sum::<f64>() > 500.0);
    }
}
