//! Every real file in `../shared/corpus` loads as the kind it is, with no
//! problem except the known-broken ones (formats.md §7.2) and HTTP error
//! answers, which must be reported clearly.

use super::*;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

use InputKind::*;

/// Expected counts and, where one is expected, a fragment of the one
/// problem the file must produce.
type Expect = (
    &'static str,
    &'static [(InputKind, u64)],
    Option<&'static str>,
);

const AZURE_REST: &[Expect] = &[
    ("INDEX.md", &[], Some("not a recognised gateway export")),
    (
        "adx-v2-query-200-partial-error.json",
        &[],
        Some("LimitsExceeded"),
    ),
    (
        "adx-v2-query-200-two-tables.json",
        &[],
        Some("not gateway log rows"),
    ),
    (
        "adx-v2-query-400-semantic-error.json",
        &[],
        Some("HTTP 400 error response: General_BadRequest"),
    ),
    (
        "arm-activity-log-list-filtered.json",
        &[(ActivityLog, 1)],
        None,
    ),
    (
        "arm-activity-log-nsg-write-doc-sample.json",
        &[(ActivityLog, 1)],
        None,
    ),
    (
        "arm-apim-api-operations-list.json",
        &[(Operations, 5)],
        None,
    ),
    ("arm-apim-api-revisions-list.json", &[(Apis, 1)], None),
    ("arm-apim-apis-list.json", &[(Apis, 4)], None),
    ("arm-apim-named-values-list.json", &[(NamedValues, 2)], None),
    ("arm-apim-policy-global-rawxml.json", &[(Policies, 1)], None),
    ("arm-apim-policy-operation-get.json", &[(Policies, 1)], None),
    ("arm-apim-service-get.json", &[(Service, 1)], None),
    ("arm-autoscale-setting-get.json", &[(Autoscale, 1)], None),
    ("arm-autoscale-settings-list.json", &[(Autoscale, 1)], None),
    ("arm-nic-effective-nsg-list.json", &[(Nsgs, 1)], None),
    ("arm-nsg-get.json", &[(Nsgs, 1)], None),
    (
        "auth-az-account-get-access-token.json",
        &[],
        Some("access-token response"),
    ),
    (
        "auth-client-credentials-token-200.json",
        &[],
        Some("access-token response"),
    ),
    (
        "auth-client-credentials-token-400.json",
        &[],
        Some("HTTP 400 error response: invalid_scope"),
    ),
    (
        "auth-identity-endpoint-token-200.json",
        &[],
        Some("access-token response"),
    ),
    (
        "auth-imds-token-200.json",
        &[],
        Some("access-token response"),
    ),
    (
        "auth-imds-token-400-missing-metadata.json",
        &[],
        Some("HTTP 400 error response: bad_request_102"),
    ),
    (
        "la-query-200-apim-pushdown-per-minute.json",
        &[],
        Some("not gateway log rows"),
    ),
    ("la-query-200-partial-error.json", &[], Some("PartialError")),
    (
        "la-query-200-doc.json",
        &[],
        Some("not gateway log rows (columns: Category, count_)"),
    ),
    ("la-query-200-spec.json", &[], Some("not gateway log rows")),
    (
        "la-query-400-syntax-error.json",
        &[],
        Some("HTTP 400 error response: BadArgumentError"),
    ),
    (
        "metrics-apim-requests-by-response-category.json",
        &[(Metrics, 2)],
        None,
    ),
    ("metrics-dimension-values-metadata.json", &[], None),
    (
        "metrics-get-per-metric-error.json",
        &[(Metrics, 1)],
        Some("InvalidSamplingType"),
    ),
    (
        "metrics-multi-resource-doc-sample.json",
        &[(Metrics, 3)],
        None,
    ),
    (
        "prom-query-range-400-too-many-points.json",
        &[],
        Some("HTTP 400 error response: bad_data: exceeded"),
    ),
    ("prom-query-range-apim-shgw.json", &[(Other, 1)], None),
    ("prom-query-range-doc.json", &[(Other, 1)], None),
    ("write-apim-api-release-put.json", &[(Other, 1)], None),
    (
        "write-apim-backend-circuit-breaker-put.json",
        &[(Backends, 1)],
        None,
    ),
    ("write-apim-policy-put-global.json", &[(Policies, 1)], None),
    (
        "write-apim-service-patch-scale-202.json",
        &[(Other, 1)],
        None,
    ),
    (
        "write-apim-service-patch-scale-final-200.json",
        &[(Service, 1)],
        None,
    ),
    (
        "write-arm-429-throttled.json",
        &[],
        Some("HTTP 429 error response: TooManyRequests"),
    ),
    ("write-arm-async-operation-status.json", &[(Other, 1)], None),
    (
        "write-autoscale-setting-patch.json",
        &[(Autoscale, 1)],
        None,
    ),
    ("write-dryrun-apim-list-skus.json", &[(Other, 5)], None),
    ("write-dryrun-arm-whatif-200.json", &[(Other, 1)], None),
    ("write-nsg-security-rule-put.json", &[(Nsgs, 1)], None),
    ("write-verify-apim-networkstatus.json", &[(Other, 1)], None),
];

const DEVOPSKIT: &str = "devopskit__tests__ArmTemplates.Tests__Resources__ApiClientJsonResponses__";

const APIM_JSON: &[Expect] = &[
    (
        "arm-templates/devopskit__example__api-httpbin__v1__api-httpbin.v1.template.json",
        &[(Apis, 1), (Operations, 2), (Policies, 1)],
        None,
    ),
    (
        "arm-templates/devopskit__example__diagnostics__application-insights.template.json",
        &[(Other, 3)],
        None,
    ),
    (
        "arm-templates/devopskit__example__products__product-unlimited.template.json",
        &[(Other, 2), (Products, 1)],
        None,
    ),
    (
        "arm-templates/devopskit__example__service.template.json",
        &[(Service, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementGetApiContract_success_response.json",
        &[(Apis, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementGetApiOperationPolicy_success_response.json",
        &[(Policies, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementGetApiPolicy_success_response.json",
        &[(Policies, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementGetInstance_success_response.json",
        &[(Service, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementGetProductPolicy_success_response.json",
        &[(Policies, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListApiOperations_success_response.json",
        &[(Operations, 5)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListApiProducts_success_response.json",
        &[(Products, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListApiSchemas_success_response.json",
        &[(Other, 2)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListApis_ExpandVersionSet_success_response.json",
        &[(Apis, 6)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListApis_success_response.json",
        &[(Apis, 4)],
        Some("recovered: dropped the trailing comma before a closing bracket on line 15, 30"),
    ),
    (
        "rest-responses/*ApiManagementListBackends_success_response.json",
        &[(Backends, 3)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListEmptyValue_success_response.json",
        &[],
        None,
    ),
    (
        "rest-responses/*ApiManagementListGatewayApis_success_response.json",
        &[(Other, 1)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListGateways_success_response.json",
        &[(Other, 2)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListGroups_success_response.json",
        &[(Other, 4)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListNamedValues_success_response.json",
        &[(NamedValues, 2)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListOpenIdConnectProviders_success_response.json",
        &[(Other, 2)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListPolicyFragments_success_response.json",
        &[(Policies, 2)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListProducts_success_response.json",
        &[(Products, 2)],
        None,
    ),
    (
        "rest-responses/*ApiManagementListSchemas_success_response.json",
        &[(Other, 2)],
        None,
    ),
    (
        "rest-responses/*ApiManagementNamedValueListValue_success_response.json",
        &[(Other, 1)],
        None,
    ),
    (
        "transcribed/quickstarts__api-management-create-with-internal-vnet-publicip__azuredeploy.json",
        &[(Nsgs, 1), (Other, 2), (Service, 1)],
        None,
    ),
    (
        "transcribed/spec__apimanagement__2024-05-01__ApiManagementCreateApiPolicyNonXmlEncoded.json",
        &[(Policies, 1)],
        None,
    ),
    (
        "transcribed/spec__apimanagement__2024-05-01__ApiManagementCreateBackendWithPriorityBasedLoadBalancer.json",
        &[(Backends, 1)],
        None,
    ),
    (
        "transcribed/spec__apimanagement__2024-05-01__ApiManagementCreateServiceInVnetWithPublicIP.json",
        &[(Service, 1)],
        None,
    ),
    (
        "transcribed/spec__apimanagement__2024-05-01__ApiManagementGetApiPolicy.json",
        &[(Policies, 1)],
        None,
    ),
    (
        "transcribed/spec__apimanagement__2024-05-01__ApiManagementGetBackend.json",
        &[(Backends, 1)],
        None,
    ),
    (
        "transcribed/spec__apimanagement__2024-05-01__ApiManagementServiceGetService.json",
        &[(Service, 1)],
        None,
    ),
    (
        "transcribed/spec__monitor__2022-10-01__getAutoscaleSetting.json",
        &[(Autoscale, 1)],
        None,
    ),
    (
        "transcribed/spec__network__2024-05-01__NetworkSecurityGroupGet.json",
        &[(Nsgs, 1)],
        None,
    ),
];

const SAMPLES: &[Expect] = &[
    // The doc sample's time is "2020-10-14T17:xx:xx.xx": one rejected row.
    (
        "docs__gatewaylogs_resource_log_record_sample.json",
        &[],
        Some("record 0: time is not a timestamp"),
    ),
    (
        "docs__activitylog_administrative_event_sample.json",
        &[(ActivityLog, 1)],
        None,
    ),
    (
        "docs__activitylog_storage_eventhub_records_sample.json",
        &[(ActivityLog, 1)],
        None,
    ),
    (
        "docs__metrics_rest_multi_resource_response_sample.json",
        &[(Metrics, 3)],
        None,
    ),
];

/// apiops artifacts, by what their file name says they are.
fn apiops_expect(name: &str) -> &'static [(InputKind, u64)] {
    if name.ends_with("productApiInformation.json")
        || name.ends_with("tagApiInformation.json")
        || name.ends_with("tagProductInformation.json")
    {
        &[]
    } else if name.ends_with("__apiInformation.json") {
        &[(Apis, 1)]
    } else if name.ends_with("backendInformation.json") {
        &[(Backends, 1)]
    } else if name.ends_with("namedValueInformation.json") {
        &[(NamedValues, 1)]
    } else if name.ends_with("productInformation.json") {
        &[(Products, 1)]
    } else {
        &[(Other, 1)]
    }
}

fn resolve(dir: &Path, pattern: &str) -> PathBuf {
    match pattern.split_once('*') {
        Some((folder, rest)) => dir.join(format!("{folder}{DEVOPSKIT}{rest}")),
        None => dir.join(pattern),
    }
}

fn check(
    path: &Path,
    want: &[(InputKind, u64)],
    problem: Option<&str>,
    failures: &mut Vec<String>,
) {
    let s = read_path(path);
    let name = path.display();
    let got: Vec<(InputKind, u64)> = s.loaded.counts.iter().map(|(k, v)| (*k, *v)).collect();
    let mut want_sorted = want.to_vec();
    want_sorted.sort();
    if got != want_sorted {
        failures.push(format!("{name}: counts {got:?}, expected {want_sorted:?}"));
    }
    if s.loaded.files != 1 {
        failures.push(format!("{name}: files = {}", s.loaded.files));
    }
    let problems: Vec<String> = s.loaded.problems.iter().map(ToString::to_string).collect();
    match problem {
        None if !problems.is_empty() => {
            failures.push(format!("{name}: unexpected problems {problems:?}"))
        }
        Some(frag) => {
            if problems.is_empty() || !problems.iter().any(|p| p.contains(frag)) {
                failures.push(format!(
                    "{name}: expected a problem containing {frag:?}, got {problems:?}"
                ));
            }
            if problems
                .iter()
                .any(|p| !p.contains(&*path.display().to_string()))
            {
                failures.push(format!(
                    "{name}: a problem does not name the file: {problems:?}"
                ));
            }
        }
        None => {}
    }
}

#[test]
fn every_corpus_json_file_loads_as_what_it_is() {
    let Some(root) = corpus() else { return };
    let mut failures = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (dir, table) in [
        (root.join("azure-rest"), AZURE_REST),
        (root.join("apim/json"), APIM_JSON),
        (root.join("apim/samples"), SAMPLES),
    ] {
        for (pattern, want, problem) in table {
            let path = resolve(&dir, pattern);
            seen.insert(path.clone());
            check(&path, want, *problem, &mut failures);
        }
    }
    let apiops = root.join("apim/json/apiops-artifacts");
    let mut files = Vec::new();
    let mut walk_problems = Vec::new();
    walk(&apiops, &mut files, &mut walk_problems);
    assert_eq!(files.len(), 41, "apiops artifacts");
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        seen.insert(f.clone());
        check(&f, apiops_expect(&name), None, &mut failures);
    }
    // Every file is covered by an expectation (new corpus files must be added).
    for sub in ["azure-rest", "apim/json", "apim/samples"] {
        let mut all = Vec::new();
        walk(&root.join(sub), &mut all, &mut walk_problems);
        for f in all {
            if !seen.contains(&f) {
                failures.push(format!("{}: no expectation in this test", f.display()));
            }
        }
    }
    assert!(walk_problems.is_empty(), "{walk_problems:?}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_policies_all_load_as_unknown_scope() {
    let Some(root) = corpus() else { return };
    let dir = root.join("apim/policies");
    let snap = collect(std::slice::from_ref(&dir)).unwrap();
    assert_eq!(snap.loaded.files, 154);
    assert_eq!(snap.policies.len(), 154, "{:?}", snap.loaded.problems);
    assert_eq!(snap.loaded.counts[&InputKind::Policies], 154);
    assert!(
        snap.loaded.problems.is_empty(),
        "{:?}",
        snap.loaded.problems
    );
    assert!(
        snap.policies
            .iter()
            .all(|p| p.scope == crate::model::PolicyScope::Unknown)
    );
    assert!(snap.policies.iter().all(|p| !p.xml.starts_with('\u{feff}')));
    assert!(
        snap.policies
            .iter()
            .all(|p| p.origin.line == Some(1) && p.format == "file")
    );
    let bom = snap
        .policies
        .iter()
        .find(|p| {
            p.origin
                .file
                .ends_with("devopskit__example__demo__Input__apiPolicyHeaders.xml")
        })
        .expect("BOM file loaded");
    assert!(bom.xml.starts_with('<'), "{:?}", &bom.xml[..20]);
}

#[test]
fn whole_corpus_folder_in_one_call() {
    let Some(root) = corpus() else { return };
    let snap = collect(&[root.join("apim/json"), root.join("azure-rest")]).unwrap();
    // apim/json: 41 apiops + 4 templates + 21 REST + 9 transcribed; azure-rest: 46 + INDEX.md.
    assert_eq!(snap.loaded.files, 75 + 47);
    assert!(snap.service.is_some());
    assert!(snap.policy(&crate::model::PolicyScope::Global).is_some());
    assert!(!snap.metrics.is_empty() && !snap.changes.is_empty() && !snap.nsgs.is_empty());
    // Duplicated entities across files collapse to one.
    let a1 = snap.apis.iter().filter(|a| a.id == "a1").count();
    assert_eq!(a1, 1);
    // Template operation policy lines point into the JSON.
    let httpbin = snap
        .policy(&crate::model::PolicyScope::Api("httpBinAPI".into()))
        .unwrap();
    assert!(httpbin.xml.contains("<set-backend-service"));
    assert_eq!(httpbin.origin.line, Some(94));
}

/// What the simulator writes is exactly what `collect` reads: every
/// scenario loads with no problem and every kind of data present.
#[test]
fn simulated_instances_load_cleanly() {
    use crate::model::MetricSource;
    for sc in crate::simulate::Scenario::ALL {
        let files = crate::simulate::generate(sc, 7, 0.02, 60);
        let s = collect_files(&files);
        let name = sc.name();
        assert!(
            s.loaded.problems.is_empty(),
            "{name}: {:?}",
            s.loaded.problems
        );
        assert_eq!(s.loaded.files, files.len() as u64, "{name}");
        for kind in [
            GatewayLogs,
            Metrics,
            Service,
            Apis,
            Operations,
            Backends,
            Policies,
            ActivityLog,
        ] {
            assert!(
                s.loaded.counts.get(&kind).is_some_and(|n| *n > 0),
                "{name}: no {kind:?}"
            );
        }
        assert!(
            s.metrics.iter().any(|m| m.source == MetricSource::Gateway),
            "{name}"
        );
        assert!(
            s.metrics
                .iter()
                .any(|m| m.source == MetricSource::BackendApp),
            "{name}"
        );
        assert!(
            s.policy(&crate::model::PolicyScope::Global).is_some(),
            "{name}"
        );
        assert!(
            s.loaded.time_range.is_some() && !s.traffic.is_empty(),
            "{name}"
        );
    }
}

/// Truncated and corrupted copies of real files never panic, and every
/// problem they cause names the file.
#[test]
fn mangled_corpus_files_never_panic() {
    let Some(root) = corpus() else { return };
    let mut files = Vec::new();
    let mut walk_problems = Vec::new();
    for sub in [
        "azure-rest",
        "apim/json/transcribed",
        "apim/json/arm-templates",
        "apim/samples",
    ] {
        walk(&root.join(sub), &mut files, &mut walk_problems);
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let name = f.display().to_string();
        for _ in 0..12 {
            let mut m = bytes.clone();
            match next(3) {
                0 => m.truncate(next(m.len())),
                1 => {
                    for _ in 0..4 {
                        let at = next(m.len());
                        if let Some(b) = m.get_mut(at) {
                            *b = [b'{', b']', b'"', b',', 0xff, b'\n'][next(6)];
                        }
                    }
                }
                _ => {
                    let at = next(m.len());
                    m.splice(at..at, *b"[[concat('<',\"");
                }
            }
            let s = parse_document(&name, &m);
            for p in &s.loaded.problems {
                assert_eq!(p.origin.file, name, "{p}");
            }
        }
    }
}

/// The apiops sample artifacts rebuilt in their real layout (paths from
/// MANIFEST.tsv): names, links and policy scopes come from the folders.
#[test]
fn apiops_sample_in_its_real_layout() {
    let Some(root) = corpus() else { return };
    let manifest = std::fs::read_to_string(root.join("apim/MANIFEST.tsv")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut copied = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (Some(local), Some(repo), Some(path)) = (cols.first(), cols.get(1), cols.get(2)) else {
            continue;
        };
        let Some(rel) = path.strip_prefix("SampleArtifacts/") else {
            continue;
        };
        if *repo != "Azure/apiops" {
            continue;
        }
        let target = dir.path().join("artifacts").join(rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(root.join("apim").join(local), &target).unwrap();
        copied += 1;
    }
    assert_eq!(copied, 46);
    let s = collect(&[dir.path().join("artifacts")]).unwrap();
    assert!(s.loaded.problems.is_empty(), "{:?}", s.loaded.problems);
    let scopes: std::collections::BTreeSet<String> =
        s.policies.iter().map(|p| p.scope.to_string()).collect();
    let want: std::collections::BTreeSet<String> = [
        "global",
        "api:basic-api",
        "api:revisioned-api;rev=2",
        "product:product2",
        "fragment:policyFragment1",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(scopes, want);
    let apis: Vec<&str> = s.apis.iter().map(|a| a.id.as_str()).collect();
    assert!(
        apis.contains(&"soap-api") && apis.contains(&"revisioned-api;rev=2"),
        "{apis:?}"
    );
    let p1 = s.products.iter().find(|p| p.id == "product1").unwrap();
    assert_eq!(p1.display_name.as_deref(), Some("product1"));
    assert_eq!(
        p1.apis,
        vec!["basic-api", "revisioned-api", "versioned-api-v1"]
    );
    let backends: Vec<&str> = s.backends.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(backends, vec!["backend1", "backend2"]);
    let names: Vec<&str> = s.named_values.iter().map(|n| n.name.as_str()).collect();
    assert!(names.contains(&"allowed-ip-address"), "{names:?}");
    let op = s
        .operations
        .iter()
        .find(|o| o.id == "get-version-v2")
        .unwrap();
    assert_eq!(op.api_id, "versioned-api-v2");
}
