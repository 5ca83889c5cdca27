//! `foolmap bench`: measured figures written to `BENCHMARKS.md` (never asserted in tests).

mod args;
mod cases;
pub mod compare;
mod device;
mod torch;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use foolmap::burn::tensor::Device;

use crate::io::data;
pub use args::{BenchArgs, Reference, Suite};

/// The CPU model, core count and the vector unit foolmap's own CPU kernels run on (AVX-512 also
/// selects the direct 3×3 convolutions), for the blocks' headers.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let unit = foolmap::model::vector_unit();
    format!("{cpu}, {cores} cores, own CPU kernels on {unit}")
}

/// Peak resident memory of this process since the last [`reset_peak_rss`], in MiB (Linux
/// `VmHWM`; `None` elsewhere).
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Hands the heap's free memory back ([`crate::malloc::release`]; the binary never trims its
/// heap otherwise) and resets the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`),
/// best effort: the next [`peak_rss_mib`] is then the row's own peak, not an earlier row's.
pub(crate) fn reset_peak_rss() {
    crate::malloc::release();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Replaces the block of `old` between the bench markers of `device` by `body`, so that
/// hand-written sections of `BENCHMARKS.md` and the blocks of other devices survive a rerun. With
/// no such block (or no file), the block is appended: nothing already written is lost.
fn splice(old: Option<&str>, body: &str, device: &str) -> String {
    let begin = format!("<!-- foolmap bench {device}: begin -->");
    let end = format!("<!-- foolmap bench {device}: end -->");
    let block = format!("{begin}\n{body}{end}\n");
    let old = old.unwrap_or("");
    match (old.find(&begin), old.find(&end)) {
        (Some(b), Some(e)) if b < e => {
            let rest = old[e + end.len()..].trim_start_matches('\n');
            let gap = if rest.is_empty() { "" } else { "\n" };
            format!("{}{block}{gap}{rest}", &old[..b])
        }
        _ if old.trim().is_empty() => block,
        _ => format!("{}\n\n{block}", old.trim_end_matches('\n')),
    }
}

/// Runs the chosen suites and rewrites their blocks of `out` (markdown), see [`splice`].
pub fn run(a: &BenchArgs, root: Option<&Path>, device: &Device, device_name: &str) -> Result<()> {
    if a.reference.is_some() && a.suite == Suite::Device {
        anyhow::bail!("--reference compares steps: use it with `--suite compare` or `--suite all`");
    }
    let cases = compare::parse_cases(&a.cases).context("--cases")?;
    if matches!(a.suite, Suite::Device | Suite::All) {
        device::run_device(root, device, device_name, &a.out)?;
    }
    if matches!(a.suite, Suite::Compare | Suite::All) {
        run_compare(a, &cases, root, device, device_name)?;
    }
    Ok(())
}

/// The comparison block: foolmap's steps and, with `--reference torch`, PyTorch's, as ratios.
fn run_compare(
    a: &BenchArgs,
    cases: &[compare::Case],
    root: Option<&Path>,
    device: &Device,
    device_name: &str,
) -> Result<()> {
    let root = data::data_root(root)?;
    let t0 = Instant::now();
    let kinds = compare::Kind::all();
    let mut measured = Vec::new();
    for &case in cases {
        let samples = compare::samples_for(case.arch, &root);
        measured.extend(compare::measure_case(
            case,
            &kinds,
            &root,
            &samples,
            device,
            &mut |m| {
                eprintln!(
                    "bench {:>7.1} s {} b{} {}: {:.1} img/s step alone, {} end to end",
                    t0.elapsed().as_secs_f64(),
                    m.case.arch.id(),
                    m.case.batch,
                    m.kind.id(),
                    m.step_ips,
                    m.e2e_ips.map_or("—".into(), |v| format!("{v:.1} img/s"))
                )
            },
        )?);
    }
    let torch = match a.reference {
        None => Err("not requested (`--reference torch`)".to_string()),
        Some(Reference::Torch) => {
            let script = compare::script_path()?;
            compare::torch_reference(
                &a.python,
                &script,
                cases,
                &kinds,
                &root,
                matches!(device_name, "wgpu" | "cuda" | "libtorch-cuda"),
            )
        }
    };
    if let Err(e) = &torch {
        eprintln!("bench: no PyTorch figures: {e}");
    }
    let md = compare::table(
        device_name,
        &format!(
            "{}; allocator: {}; machine: {}",
            crate::build_features(),
            crate::malloc::current(),
            machine()
        ),
        &measured,
        &torch,
        t0.elapsed().as_secs_f64(),
    );
    let key = format!("{device_name} compare");
    let old = std::fs::read_to_string(&a.out).ok();
    crate::io::atomic::write_atomic(&a.out, splice(old.as_deref(), &md, &key).as_bytes())?;
    println!("wrote {}", a.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn splice_replaces_only_the_generated_block_of_its_device() {
        let old = "# Title\n\n<!-- foolmap bench cpu: begin -->\nold cpu\n<!-- foolmap bench cpu: end -->\n\n\
                   <!-- foolmap bench wgpu: begin -->\nold gpu\n<!-- foolmap bench wgpu: end -->\n\n## Hand-written\nkept\n";
        let new = splice(Some(old), "new cpu\n", "cpu");
        assert!(new.contains("new cpu") && !new.contains("old cpu"), "{new}");
        assert!(
            new.starts_with("# Title\n\n<!-- foolmap bench cpu: begin -->\nnew cpu\n"),
            "{new}"
        );
        assert!(
            new.ends_with("old gpu\n<!-- foolmap bench wgpu: end -->\n\n## Hand-written\nkept\n"),
            "{new}"
        );
        let gpu = splice(Some(&new), "new gpu\n", "wgpu");
        assert!(
            gpu.contains("new cpu") && gpu.contains("new gpu") && !gpu.contains("old gpu"),
            "{gpu}"
        );
    }

    #[test]
    fn splice_appends_when_the_device_has_no_block() {
        // No file: the block alone.
        assert_eq!(
            splice(None, "x\n", "cpu"),
            "<!-- foolmap bench cpu: begin -->\nx\n<!-- foolmap bench cpu: end -->\n"
        );
        // Hand-written text without markers is kept, the block goes after it.
        assert_eq!(
            splice(Some("hand only\n"), "x\n", "cuda"),
            "hand only\n\n<!-- foolmap bench cuda: begin -->\nx\n<!-- foolmap bench cuda: end -->\n"
        );
    }
}
