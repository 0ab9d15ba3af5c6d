//! Every real file in `../shared/corpus` loads as the kind it is, with no
//! problem except the known-broken ones (formats.md §7.2) and HTTP error
//! answers, which must be reported clearly.

use super::*;
use std::collections::BTreeMap;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

fn summary(s: &Snapshot) -> String {
    let counts: BTreeMap<&str, u64> = s
        .loaded
        .counts
        .iter()
        .map(|(k, v)| (k.label(), *v))
        .collect();
    let problems: Vec<String> = s.loaded.problems.iter().map(|p| p.to_string()).collect();
    format!("{counts:?} problems={problems:#?}")
}

#[test]
#[ignore]
fn dump_corpus() {
    let Some(root) = corpus() else { return };
    for sub in ["apim/json", "apim/samples", "azure-rest"] {
        let mut files = Vec::new();
        let mut probs = Vec::new();
        walk(&root.join(sub), &mut files, &mut probs);
        for f in files {
            let s = read_path(&f);
            println!(
                "{}\n    {}",
                f.strip_prefix(&root).unwrap().display(),
                summary(&s)
            );
        }
    }
}
