//! Which backend an Azure app resource is: a metric series, a deployment or
//! an activity-log write names an app (by resource id or short name), and
//! `app_matches` says whether that app is the one behind a backend. Shared by
//! the backend, change and story analyses (and the TUI's app pane), so they
//! agree on it.

use super::Ctx;
use crate::model::{AppProvider, app_of_resource, url_host};

/// Does metric series / change resource `name` (short name or full id)
/// belong to `backend`? The resource id is read as the app it is under
/// (`…/sites/NAME/deployments/ID` and `…/sites/NAME/slots/S` are site NAME
/// and its slot, `…/containerApps/NAME/revisions/R` is container app NAME),
/// then matched against the backend entity's `resourceId`, or against the
/// backend URL's host naming the app.
pub fn app_matches(
    ctx: &Ctx,
    backend: &str,
    resource_id: Option<&str>,
    name: Option<&str>,
) -> bool {
    let app = resource_id.and_then(app_of_resource);
    let short = name
        .map(str::to_string)
        .or_else(|| app.as_ref().map(|a| a.host_label()))
        .or_else(|| resource_id.and_then(|r| r.rsplit('/').next().map(str::to_string)))
        .unwrap_or_default()
        .to_ascii_lowercase();
    // App Service host names are exactly NAME or NAME-SLOT: no prefix match
    // (site `catalog-web` is not slot `catalog-web-staging`).
    let exact_host = app
        .as_ref()
        .is_some_and(|a| a.provider == AppProvider::AppService);
    if let Some(entity) = ctx.snapshot.backend(backend) {
        let want_app = entity.resource_id.as_deref().and_then(app_of_resource);
        if let (Some(want), Some(have)) = (&want_app, &app) {
            // Both ids name an app: that settles it.
            return want.same_app(have);
        }
        if let (Some(want), Some(have)) = (entity.resource_id.as_deref(), resource_id) {
            let want = want.trim_start_matches("https://management.azure.com");
            if want.eq_ignore_ascii_case(have) {
                return true;
            }
        }
        if let Some(want) = entity.resource_id.as_deref()
            && want
                .rsplit('/')
                .next()
                .is_some_and(|w| !short.is_empty() && w.eq_ignore_ascii_case(&short))
        {
            return true;
        }
        if let Some(url) = entity.url.as_deref()
            && host_names(url_host(url), &short, exact_host)
        {
            return true;
        }
        if entity.id.eq_ignore_ascii_case(&short) {
            return true;
        }
    }
    host_names(backend, &short, exact_host)
}

/// A host (or backend key) whose first label is the app's name, or starts
/// with it (`inventory-app.azurecontainerapps.io`, `inventory-app-prod…`)
/// unless `exact`.
fn host_names(host: &str, app: &str, exact: bool) -> bool {
    if app.len() < 3 {
        return false;
    }
    let host = host.to_ascii_lowercase();
    let first = host.split(['.', ':']).next().unwrap_or("");
    first == app || (!exact && app.len() >= 5 && first.starts_with(app))
}
