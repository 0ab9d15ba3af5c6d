//! One live pull from start to end: sign in, find the instances of the
//! target, read each (at most `parallel_instances` at a time, every request
//! under the client's concurrency limit and time budget), show progress on
//! a terminal, and optionally write what was read to a folder (`--save`)
//! in the shapes `apimedic diagnose DIR` reads.

use super::arm::{ArmClient, ArmOptions, StatsNow};
use super::credential::{Credential, CredentialOptions, Principal};
use super::pull::{PullOptions, Pulled, problem_of, pull_service};
use super::target::{Target, resolve};
use crate::model::{Origin, Problem, Snapshot};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a live pull needs.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    pub credential: CredentialOptions,
    pub arm: ArmOptions,
    pub pull: PullOptions,
    /// Instances read at the same time.
    pub parallel_instances: usize,
    /// Draw a progress line on stderr when it is a terminal.
    pub progress: bool,
}

/// What a pull read.
#[derive(Debug, Default)]
pub struct Live {
    pub instances: Vec<Pulled>,
    /// Problems that belong to no instance (discovery failed, sign-in).
    pub problems: Vec<Problem>,
    pub stats: StatsNow,
    pub principal: Option<Principal>,
    pub elapsed: Duration,
}

/// One snapshot per instance read: the documents parsed as files are,
/// plus every read that failed as a problem naming its resource. Problems
/// that belong to no instance go to the first.
pub fn snapshots(live: &Live) -> Vec<(String, Snapshot)> {
    let mut out: Vec<(String, Snapshot)> = live
        .instances
        .iter()
        .map(|p| {
            let mut snap = crate::collect::collect_files(&p.documents);
            for problem in &p.problems {
                snap.loaded.reject(problem.clone());
            }
            (p.service_id.clone(), snap)
        })
        .collect();
    if let Some((_, first)) = out.first_mut() {
        for problem in &live.problems {
            first.loaded.reject(problem.clone());
        }
    }
    out
}

/// Signs in and makes the client (nothing is sent yet).
pub fn connect(options: &LiveOptions) -> anyhow::Result<ArmClient> {
    let credential = Credential::new(options.credential.clone())?;
    ArmClient::new(credential, options.arm.clone()).map_err(anyhow::Error::msg)
}

/// Reads `targets` with `client` (see the module doc). Fails only when
/// sign-in fails or nothing at all could be found; everything else is a
/// problem in the result.
pub async fn pull(
    client: &ArmClient,
    targets: &[Target],
    options: &LiveOptions,
) -> anyhow::Result<Live> {
    let mut got = Vec::new();
    let mut live = pull_each(client, targets, options, &mut |p| {
        got.push(p);
        true
    })
    .await?;
    live.instances = got;
    Ok(live)
}

/// `pull`, handing each instance to `each` as soon as it is read (in the
/// order they finish) instead of keeping them: at most
/// `parallel_instances` are held at once, so memory stays bounded for a
/// fleet. `each` returns false to stop. `Live::instances` stays empty.
pub async fn pull_each(
    client: &ArmClient,
    targets: &[Target],
    options: &LiveOptions,
    each: &mut (dyn FnMut(Pulled) -> bool + Send),
) -> anyhow::Result<Live> {
    let started = Instant::now();
    let mut live = Live::default();
    // Sign in first: one clear error instead of one per resource.
    let token = client
        .credential()
        .token(super::ARM_SCOPE)
        .await
        .map_err(anyhow::Error::new)?;
    live.principal = token.principal.clone();
    let mut services = Vec::new();
    for t in targets {
        match resolve(client, t).await {
            Ok(found) if found.is_empty() => live.problems.push(Problem {
                origin: Origin::file("azure:Resource Graph"),
                message: format!(
                    "no API Management instance found for {} (check the subscription and that {} can read it)",
                    t.describe(),
                    live.principal
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "the signed-in principal".into())
                ),
            }),
            Ok(found) => services.extend(found),
            Err(e) => live.problems.push(problem_of(&e)),
        }
    }
    services.sort_by_key(|s| s.id().to_ascii_lowercase());
    services.dedup_by_key(|s| s.id().to_ascii_lowercase());
    if services.is_empty() {
        let why = live
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n  ");
        anyhow::bail!("nothing to read:\n  {why}");
    }
    let progress = Progress::new(options.progress, services.len(), client.clone());
    let limit = Arc::new(tokio::sync::Semaphore::new(
        options.parallel_instances.max(1),
    ));
    let mut set = tokio::task::JoinSet::new();
    for sid in services {
        let (c, o, l) = (client.clone(), options.pull, Arc::clone(&limit));
        set.spawn(async move {
            // The permit is held until the caller has taken the result.
            let permit = l.acquire_owned().await;
            (pull_service(&c, &sid, o).await, permit)
        });
    }
    let ticker = progress.start();
    while let Some(r) = set.join_next().await {
        if let Ok((pulled, permit)) = r {
            progress.done_one();
            let go_on = each(pulled);
            drop(permit);
            if !go_on {
                set.abort_all();
                break;
            }
        }
    }
    if let Some(t) = ticker {
        t.abort();
    }
    progress.finish();
    live.stats = client.stats();
    live.elapsed = started.elapsed();
    Ok(live)
}

/// `pull_each` from synchronous code (the CLI): the pull runs on its own
/// runtime thread and hands instances over one at a time (a channel of
/// one), so `each` can analyse and print while the next is read.
pub fn pull_blocking(
    targets: &[Target],
    options: &LiveOptions,
    mut each: impl FnMut(Pulled) -> anyhow::Result<()>,
) -> anyhow::Result<Live> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Pulled>(1);
    let (targets, options) = (targets.to_vec(), options.clone());
    let worker = std::thread::spawn(move || -> anyhow::Result<Live> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async {
            let client = connect(&options)?;
            let mut send = move |p: Pulled| tx.send(p).is_ok();
            pull_each(&client, &targets, &options, &mut send).await
        })
    });
    let mut failed = None;
    for p in rx.iter() {
        if let Err(e) = each(p) {
            failed = Some(e);
            break;
        }
    }
    drop(rx);
    let live = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the Azure reader stopped unexpectedly"))??;
    match failed {
        Some(e) => Err(e),
        None => Ok(live),
    }
}

/// Writes one instance's documents under `dir` (created); returns how many.
pub fn save_instance(p: &Pulled, dir: &Path) -> anyhow::Result<usize> {
    use anyhow::Context;
    let mut n = 0;
    for (rel, bytes) in &p.documents {
        if rel
            .split('/')
            .any(|s| s.is_empty() || s == ".." || s == ".")
        {
            anyhow::bail!("refusing to write `{rel}` outside {}", dir.display());
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        n += 1;
    }
    Ok(n)
}

/// What `--save` writes beside the documents: `.apimedic-pull.json`
/// (hidden, so `diagnose DIR` does not read it) with the target, the span,
/// each instance, the counters and every problem.
pub fn save_manifest(
    live: &Live,
    instances: &[serde_json::Value],
    problems: &[Problem],
    dir: &Path,
    what: &str,
    span: &super::pull::Span,
) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let manifest = serde_json::json!({
        "target": what,
        "span": {"start": span.start.to_rfc3339(), "end": span.end.to_rfc3339()},
        "instances": instances,
        "problems": problems,
        "requests": live.stats,
        "principal": live.principal,
        "seconds": live.elapsed.as_secs_f64(),
    });
    let path = dir.join(".apimedic-pull.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes every instance of `live` and the manifest under `dir`.
pub fn save(
    live: &Live,
    dir: &Path,
    what: &str,
    span: &super::pull::Span,
) -> anyhow::Result<usize> {
    let mut n = 0;
    for p in &live.instances {
        n += save_instance(p, dir)?;
    }
    let instances: Vec<serde_json::Value> = live.instances.iter().map(instance_entry).collect();
    let problems: Vec<Problem> = live
        .problems
        .iter()
        .chain(live.instances.iter().flat_map(|p| p.problems.iter()))
        .cloned()
        .collect();
    save_manifest(live, &instances, &problems, dir, what, span)?;
    Ok(n)
}

/// One instance's line in the manifest.
pub fn instance_entry(p: &Pulled) -> serde_json::Value {
    serde_json::json!({"id": p.service_id, "documents": p.documents.len(), "workspaces": p.log_workspaces.iter().map(|w| &w.resource_id).collect::<Vec<_>>()})
}

/// A one-line progress display on stderr (only on a terminal).
struct Progress {
    on: bool,
    total: usize,
    done: Arc<std::sync::atomic::AtomicUsize>,
    client: ArmClient,
}

impl Progress {
    fn new(want: bool, total: usize, client: ArmClient) -> Progress {
        Progress {
            on: want && std::io::stderr().is_terminal(),
            total,
            done: Arc::new(0.into()),
            client,
        }
    }

    fn done_one(&self) {
        self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn line(&self) -> String {
        let s = self.client.stats();
        format!(
            "\rreading Azure: {}/{} instances, {} requests, {} throttled, {} failed ",
            self.done.load(std::sync::atomic::Ordering::Relaxed),
            self.total,
            s.requests,
            s.throttled,
            s.failed
        )
    }

    /// Redraws every 200 ms until the returned guard is dropped.
    fn start(&self) -> Option<tokio::task::JoinHandle<()>> {
        if !self.on {
            return None;
        }
        let me = Progress {
            on: true,
            total: self.total,
            done: Arc::clone(&self.done),
            client: self.client.clone(),
        };
        Some(tokio::spawn(async move {
            loop {
                let _ = std::io::stderr().write_all(me.line().as_bytes());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }

    fn finish(&self) {
        if self.on {
            let _ = writeln!(std::io::stderr(), "{}", self.line());
        }
    }
}
