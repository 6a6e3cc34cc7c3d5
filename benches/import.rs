//! Import benchmark: `shoal import` of a generated dump of 100,000 messages
//! from 100 authors (parse + validate + store), measured on the release
//! binary, beside the raw ed25519-dalek `verify_batch` rate on the same
//! signatures in chunks of 128 to 8,192 (the chunk size with the best
//! median is the ceiling compared against), beside shoal's own batch
//! equation (each key's terms summed first, `shoal::crypto::verify_batch`)
//! on the same chunks, and
//! beside the validation-only rates (no storage) of other SSB validators
//! on the same dump: the Rust crates `ssb-validate` and
//! `ssb-verify-signatures` (`benches/validators`, built on demand) and the
//! JavaScript `ssb-validate` loop (`benches/js/validate-loop.js`, needs
//! `node` and the refpeer kit's oracle).
//!
//! In the same run, a shoal node replicates the imported dump from another
//! over loopback (a fresh node following every author: newest messages
//! first, then the older history): the replication rate beside the
//! import's; and again over EBT alone (the same fresh node with
//! `newest_first = 0`, as it takes the feeds it does not follow directly
//! and every peer that serves no history ranges). Imports, replications
//! and rounds of the raw verification
//! alternate, [`ROUNDS`] of each, and their medians are compared, so that
//! the machine's drift during the run does not fall on one of them only.
//! Beside the times, the CPU each takes (the import's process; both nodes
//! of a first sync, and the machine's idle time meanwhile): the ratio of
//! the two says how near replication can come to the import while both
//! nodes share the machine's cores.
//!
//! Imports run with `[search] enabled = false`: the import alone (the
//! social benchmark measures what indexing adds).
//!
//! Run: `cargo bench --bench import` (env `SHOAL_BENCH_MSGS` to change the
//! count). Prints one table; the README quotes it.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use rayon::prelude::*;
use shoal::feed;

mod baselines;
mod common;
mod nodes;

use common::{AUTHORS, generate};

/// Rounds of one import, one replication and one raw verification at
/// each chunk size; medians are reported.
const ROUNDS: usize = 7;

/// Copies a directory tree (a home that is not running).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Chunk sizes of the raw baseline: the one with the best median is the
/// ceiling. They go past 2,048, where `verify_batch` was still getting
/// faster, so that the best is not the largest one tried.
const CHUNKS: [usize; 7] = [128, 256, 512, 1024, 2048, 4096, 8192];

/// A batch verifier: how many of a chunk's signatures it accepts.
type Verifier<'a> = &'a (dyn Fn(Vec<feed::Unverified>) -> usize + Sync);

/// The dump's messages prepared for verification (parsed, signatures and
/// signed bytes split out), for the raw baselines.
fn prepared(path: &Path) -> Vec<feed::Unverified> {
    fs::read(path)
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v = feed::json::parse(l).unwrap();
            feed::prepare(v.get("value").unwrap().clone(), None).unwrap()
        })
        .collect()
}

/// One round of raw batch verification of the dump's signatures (no
/// parsing, no storage) by `verify`, in chunks of each of [`CHUNKS`], on
/// one thread and on every core: `(chunk, 1-thread rate, all-cores rate)`
/// for each.
fn raw_round(all: &[feed::Unverified], verify: Verifier<'_>) -> Vec<(usize, f64, f64)> {
    let n = all.len();
    let chunked = |size: usize| -> Vec<Vec<feed::Unverified>> {
        all.chunks(size).map(<[_]>::to_vec).collect()
    };
    CHUNKS
        .iter()
        .map(|&size| {
            let chunks = chunked(size);
            let t = Instant::now();
            let good: usize = chunks.into_iter().map(verify).sum();
            let single = n as f64 / t.elapsed().as_secs_f64();
            assert_eq!(good, n);
            let chunks = chunked(size);
            let t = Instant::now();
            let good: usize = chunks.into_par_iter().map(verify).sum();
            let parallel = n as f64 / t.elapsed().as_secs_f64();
            assert_eq!(good, n);
            (size, single, parallel)
        })
        .collect()
}

/// Time all the machine's cores have been idle (or waiting on the disk)
/// since boot, core-seconds, from `/proc/stat` (ticks of 1/100 s).
fn idle_secs() -> f64 {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait ...
    (fields.get(3).unwrap_or(&0.0) + fields.get(4).unwrap_or(&0.0)) / 100.0
}

/// One first sync: a node serving home `a`, and a node on a copy of the
/// follower `template` at `b`, which connects and takes `n` messages.
/// How long that took from just before `shoal connect`, and the CPU of
/// both nodes (core-seconds) and the machine's idle time meanwhile.
fn first_sync(a: &Path, template: &Path, b: &Path, n: u64) -> (f64, (f64, f64, f64)) {
    copy_dir(template, b);
    let before = nodes::messages_of(b);
    let node_a = nodes::Serve::start(a, nodes::free_port());
    let node_b = nodes::Serve::start(b, nodes::free_port());
    let a_addr = nodes::shoal(a, &["address"]);
    let (a0, b0, idle0) = (node_a.cpu_secs(), node_b.cpu_secs(), idle_secs());
    nodes::shoal(b, &["connect", &a_addr]);
    let took = nodes::wait_messages(b, before + n, std::time::Duration::from_secs(600));
    let cpu = (
        node_a.cpu_secs() - a0,
        node_b.cpu_secs() - b0,
        idle_secs() - idle0,
    );
    node_b.stop();
    node_a.stop();
    (took.as_secs_f64(), cpu)
}

/// The median of some rates (or times).
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Per chunk size, over the rounds: `(chunk, median 1-thread, median
/// all-cores, best all-cores)`.
fn chunk_rates(rounds: &[Vec<(usize, f64, f64)>]) -> Vec<(usize, f64, f64, f64)> {
    CHUNKS
        .iter()
        .enumerate()
        .map(|(i, &chunk)| {
            let one: Vec<f64> = rounds.iter().map(|r| r[i].1).collect();
            let all: Vec<f64> = rounds.iter().map(|r| r[i].2).collect();
            let best = all.iter().copied().fold(0.0, f64::max);
            (chunk, median(&one), median(&all), best)
        })
        .collect()
}

/// ed25519-dalek's `verify_batch` on a chunk, keys prepared once per
/// author (as shoal keeps them): the ceiling the import is compared with.
fn dalek_verifier(
    keys: &HashMap<[u8; 32], ed25519_dalek::VerifyingKey>,
) -> impl Fn(Vec<feed::Unverified>) -> usize + Sync + '_ {
    move |chunk| {
        let data: Vec<&[u8]> = chunk.iter().map(|u| u.signed().0).collect();
        let sigs: Vec<ed25519_dalek::Signature> = chunk
            .iter()
            .map(|u| ed25519_dalek::Signature::from_bytes(u.signed().1))
            .collect();
        let vks: Vec<ed25519_dalek::VerifyingKey> =
            chunk.iter().map(|u| keys[&u.author().0]).collect();
        assert!(ed25519_dalek::verify_batch(&data, &sigs, &vks).is_ok());
        chunk.len()
    }
}

fn main() {
    let total: usize = std::env::var("SHOAL_BENCH_MSGS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-import");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).unwrap();
    let dump = work.join("dump.jsonl");
    let t = Instant::now();
    generate(&dump, total);
    let dump_bytes = fs::metadata(&dump).unwrap().len();
    eprintln!(
        "generated {total} messages from {AUTHORS} authors ({:.1} MB) in {:.1} s",
        dump_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // The dump parsed once: its authors' keys, and the messages the raw
    // baselines verify.
    let all = prepared(&dump);
    let n = all.len();
    let dalek_keys: HashMap<[u8; 32], ed25519_dalek::VerifyingKey> = all
        .iter()
        .map(|u| {
            let a = u.author();
            (a.0, ed25519_dalek::VerifyingKey::from_bytes(&a.0).unwrap())
        })
        .collect();
    let shoal_keys = feed::KeyCache::default();
    for u in &all {
        shoal_keys.get(&u.author());
    }
    let dalek_verify = dalek_verifier(&dalek_keys);
    // shoal's own batch equation (each key's terms summed first), beside it.
    let own_verify = |c: Vec<feed::Unverified>| {
        feed::verify_many(c, &shoal_keys)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    };
    let mut raw_rounds: Vec<Vec<(usize, f64, f64)>> = Vec::new();
    let mut own_rounds: Vec<Vec<(usize, f64, f64)>> = Vec::new();

    let bin = env!("CARGO_BIN_EXE_shoal");
    // A fresh node following every author (search off, as in the imports),
    // copied for each replication run.
    let follower = work.join("follower");
    nodes::shoal(&follower, &["init"]);
    let config = follower.join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, text + "\n[search]\nenabled = false\n").unwrap();
    for i in 0..AUTHORS {
        let id = common::author_key(i).id();
        nodes::shoal(
            &follower,
            &[
                "publish",
                &format!(r#"{{"type":"contact","contact":"{id}","following":true}}"#),
            ],
        );
    }
    // The same follower taking every feed over EBT alone.
    let follower_ebt = work.join("follower-ebt");
    copy_dir(&follower, &follower_ebt);
    let config = follower_ebt.join("config.toml");
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.contains("\nnewest_first = 50\n"), "{text}");
    fs::write(
        &config,
        text.replace("\nnewest_first = 50\n", "\nnewest_first = 0\n"),
    )
    .unwrap();
    // Rounds of one import into a fresh home and one shoal -> shoal
    // replication of the same dump, alternating, so that the ratio of
    // their medians is not the machine's drift between two series.
    let mut runs: Vec<(f64, u64, u64, u64)> = Vec::new();
    let mut repl: Vec<f64> = Vec::new();
    let mut repl_ebt: Vec<f64> = Vec::new();
    // CPU, core-seconds: of each import; of each first sync's sending and
    // receiving node, and the machine's idle time meanwhile.
    let mut import_cpu: Vec<f64> = Vec::new();
    let mut repl_cpu: Vec<(f64, f64, f64)> = Vec::new();
    for run in 0..ROUNDS {
        let home = work.join(format!("home{run}"));
        let st = Command::new(bin)
            .arg("--home")
            .arg(&home)
            .arg("init")
            .output()
            .unwrap();
        assert!(st.status.success(), "init failed: {st:?}");
        // The import alone, as it was measured before search: the social
        // benchmark measures what indexing adds.
        let config = home.join("config.toml");
        let text = fs::read_to_string(&config).unwrap();
        fs::write(&config, text + "\n[search]\nenabled = false\n").unwrap();
        let t = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "maxrss_kb=%M\ncpu_s=%U %S"])
            .arg(bin)
            .arg("--home")
            .arg(&home)
            .arg("import")
            .arg(&dump)
            .output()
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains(&format!("imported {n}, rejected 0")),
            "import failed: {stdout} {stderr}"
        );
        // User and system CPU of the import, in core-seconds.
        let cpu: f64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("cpu_s="))
            .map(|v| {
                v.split_whitespace()
                    .filter_map(|x| x.parse::<f64>().ok())
                    .sum()
            })
            .unwrap_or(0.0);
        import_cpu.push(cpu);
        let rss_kb: u64 = stderr
            .lines()
            .find_map(|l| l.strip_prefix("maxrss_kb="))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let meta = fs::metadata(home.join("store.redb")).unwrap();
        // Blocks actually allocated: redb grows its file sparsely.
        let on_disk = {
            use std::os::unix::fs::MetadataExt as _;
            meta.blocks() * 512
        };
        runs.push((secs, rss_kb, on_disk, meta.len()));
        eprintln!("import run {run}: {secs:.2} s");

        // shoal -> shoal replication of the same dump: a node serving the
        // first imported home, and a copy of the fresh follower.
        let a = work.join("home0");
        let b = work.join(format!("follower{run}"));
        let (took, cpu) = first_sync(&a, &follower, &b, n as u64);
        repl_cpu.push(cpu);
        eprintln!("replication run {run}: {took:.2} s");
        repl.push(took);

        // The same over EBT alone.
        let b = work.join(format!("follower-ebt{run}"));
        let (took, _) = first_sync(&a, &follower_ebt, &b, n as u64);
        eprintln!("replication over EBT alone, run {run}: {took:.2} s");
        repl_ebt.push(took);

        // The raw ceiling in the same round: so that its median and the
        // import's come from the same moments of the machine, as the
        // issue's own figures did (medians of alternating runs).
        raw_rounds.push(raw_round(&all, &dalek_verify));
        own_rounds.push(raw_round(&all, &own_verify));
        eprintln!(
            "raw round {run}: best chunk {:.0} msg/s on all cores",
            raw_rounds[run].iter().map(|r| r.2).fold(0.0, f64::max)
        );
    }
    drop(all);
    let raw = chunk_rates(&raw_rounds);
    let own = chunk_rates(&own_rounds);
    // The ceiling: the chunk size whose median all-cores rate is best.
    let (best_chunk, single, parallel, parallel_best) = raw
        .iter()
        .copied()
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .expect("chunk sizes");
    let times: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let import_median = median(&times);
    let (secs, rss_kb, store_bytes, store_apparent) =
        *runs.iter().find(|r| r.0 == import_median).unwrap();
    let rate = n as f64 / secs;
    let list = |v: &[f64]| {
        v.iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let import_runs = list(&runs.iter().map(|r| r.0).collect::<Vec<_>>());
    let repl_runs = list(&repl);
    let repl_median = median(&repl);
    let repl_rate = n as f64 / repl_median;
    let ebt_runs = list(&repl_ebt);
    let ebt_median = median(&repl_ebt);
    let import_cpu = median(&import_cpu);
    let sender_cpu = median(&repl_cpu.iter().map(|c| c.0).collect::<Vec<_>>());
    let receiver_cpu = median(&repl_cpu.iter().map(|c| c.1).collect::<Vec<_>>());
    let pair_cpu = median(&repl_cpu.iter().map(|c| c.0 + c.1).collect::<Vec<_>>());
    let idle = median(&repl_cpu.iter().map(|c| c.2).collect::<Vec<_>>());

    // The other validators, on the same dump, after the imports.
    let mut others = baselines::rust_crates(
        &dump,
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("validators"),
    );
    others.push(baselines::js_ssb_validate(&dump, &nodes::kit()));
    for o in &others {
        assert_eq!(o.count, n as u64, "{} validated another count", o.name);
    }
    let other = |name: &str| {
        others
            .iter()
            .find(|o| o.name == name)
            .unwrap_or_else(|| panic!("no rate for {name}"))
    };

    println!("| measure | value |");
    println!("|---|---|");
    println!("| messages (authors) | {n} ({AUTHORS}) |");
    println!("| dump size | {:.1} MB |", dump_bytes as f64 / 1e6);
    for (chunk, one, all, best) in &raw {
        println!(
            "| raw ed25519-dalek verify_batch in chunks of {chunk}, 1 thread / all {} cores, median of {ROUNDS} (best run) | {one:.0} / {all:.0} ({best:.0}) msg/s |",
            rayon::current_num_threads(),
        );
    }
    for (chunk, one, all, best) in &own {
        println!(
            "| raw shoal batch equation (keys summed) in chunks of {chunk}, 1 thread / all cores, median of {ROUNDS} (best run) | {one:.0} / {all:.0} ({best:.0}) msg/s |",
        );
    }
    let own_best = own.iter().map(|o| o.2).fold(0.0, f64::max);
    println!(
        "| `shoal import` (parse + validate + store), wall, median of {ROUNDS} (alternating with the replications) | {secs:.2} s (runs {import_runs} s) |",
    );
    println!("| `shoal import` rate | **{rate:.0} msg/s** |");
    println!(
        "| import / raw verify_batch at its best chunk ({best_chunk}), 1 thread / all cores | {:.0}% / **{:.0}%** |",
        100.0 * rate / single,
        100.0 * rate / parallel
    );
    println!(
        "| import / the best single run of raw verify_batch at that chunk, all cores | {:.0}% |",
        100.0 * rate / parallel_best
    );
    println!(
        "| import / shoal's own batch equation at its best chunk, all cores | {:.0}% |",
        100.0 * rate / own_best
    );
    println!(
        "| shoal -> shoal replication of the same dump (newest first, then backfill, over loopback; both nodes on this machine), median of {ROUNDS} | {:.2} s (runs {repl_runs} s), **{repl_rate:.0} msg/s** |",
        repl_median
    );
    println!(
        "| replication / import | **{:.0}%** |",
        100.0 * repl_rate / rate
    );
    println!(
        "| the same over EBT alone (`newest_first = 0`), median of {ROUNDS} | {ebt_median:.2} s (runs {ebt_runs} s), {:.0} msg/s, {:.0}% of the import |",
        n as f64 / ebt_median,
        100.0 * n as f64 / ebt_median / rate
    );
    println!("| CPU of one import (user + system), median | {import_cpu:.2} core-s |");
    println!(
        "| CPU of one first sync, medians: sending node + receiving node (both together) | {sender_cpu:.2} + {receiver_cpu:.2} ({pair_cpu:.2}) core-s; the machine idle meanwhile {idle:.2} core-s |",
    );
    println!(
        "| replication / import if a first sync kept the cores as busy as the import does (import CPU / first sync CPU) | {:.0}% |",
        100.0 * import_cpu / pair_cpu
    );
    for o in &others {
        println!(
            "| {}, validation only, best of 3 | {:.2} s, {:.0} msg/s |",
            o.label,
            o.ms / 1e3,
            o.per_sec()
        );
    }
    for (name, versus, target) in [
        ("ssb-validate", "ssb-validate (Rust), hash chains alone", ""),
        (
            "ssb-verify-signatures",
            "ssb-verify-signatures, signatures alone",
            "",
        ),
        (
            "ssb-validate+ssb-verify-signatures",
            "both Rust crates in turn, validation only",
            " (target: 1.5x)",
        ),
        ("js-ssb-validate", "JS ssb-validate loop", " (target: 5x)"),
    ] {
        println!(
            "| `shoal import` / {versus}{target} | **{:.2}x** |",
            rate / other(name).per_sec()
        );
    }
    println!(
        "| store on disk / dump size | {:.1} MB / {:.1} MB = **{:.2}x** (apparent file length {:.1} MB, sparse) |",
        store_bytes as f64 / 1e6,
        dump_bytes as f64 / 1e6,
        store_bytes as f64 / dump_bytes as f64,
        store_apparent as f64 / 1e6
    );
    println!(
        "| peak memory (max RSS) of the import | {:.1} MB |",
        rss_kb as f64 / 1024.0
    );
}
