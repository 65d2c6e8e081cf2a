//! Java's `ThreadPoolExecutor` and `ForkJoinPool` as peers, when `javac` and `java` are on PATH:
//! a small program compiled into `target/bench/java` and run with the workloads' sizes. It also
//! reports the JVM's CPU time per task (every thread, JIT and GC included).

use std::process::Command;

const SOURCE: &str = r#"
import java.lang.management.ManagementFactory;
import java.util.*;
import java.util.concurrent.*;

public class Bench {
    static double median(double[] xs) { Arrays.sort(xs); int m = xs.length / 2; return xs.length % 2 == 1 ? xs[m] : (xs[m - 1] + xs[m]) / 2; }

    static final com.sun.management.OperatingSystemMXBean OS =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

    /** CPU time of the whole JVM (every thread, JIT and GC included), in ns. */
    static long cpu() { return OS.getProcessCpuTime(); }

    static void run(ExecutorService ex, String p, int nA, int nB, int nC, int nD, int reps) throws Exception {
        double[] a = new double[reps], c = new double[reps], d = new double[reps];
        double[] ac = new double[reps], cc = new double[reps], dc = new double[reps];
        for (int r = 0; r < reps; r++) {
            long u = cpu(), t = System.nanoTime();
            List<Future<?>> fs = new ArrayList<>(nA);
            for (int i = 0; i < nA; i++) fs.add(ex.submit(() -> {}));
            for (Future<?> f : fs) f.get();
            a[r] = nA / ((System.nanoTime() - t) / 1e9); ac[r] = (cpu() - u) / 1e3 / nA;

            u = cpu(); t = System.nanoTime();
            CompletionService<Integer> cs = new ExecutorCompletionService<>(ex);
            for (int i = 0; i < nC; i++) { final int k = i; cs.submit(() -> k); }
            for (int i = 0; i < nC; i++) cs.take();
            c[r] = (System.nanoTime() - t) / 1e3 / nC; cc[r] = (cpu() - u) / 1e3 / nC;

            u = cpu(); t = System.nanoTime();
            List<Future<Long>> ds = new ArrayList<>(nD);
            for (int i = 0; i < nD; i++) { final long k = i; ds.add(ex.submit(() -> k * 2)); }
            long sum = 0;
            for (Future<Long> f : ds) sum += f.get();
            d[r] = nD / ((System.nanoTime() - t) / 1e9); dc[r] = (cpu() - u) / 1e3 / nD;
            if (sum < 0) System.out.println("impossible");
        }
        double[] b = new double[nB];
        long u = cpu();
        for (int i = 0; i < nB; i++) {
            final int k = i;
            long t = System.nanoTime();
            ex.submit(() -> k).get();
            b[i] = (System.nanoTime() - t) / 1e3;
        }
        double bc = (cpu() - u) / 1e3 / nB;
        ex.shutdown();
        System.out.println(p + "a\t" + median(a));
        System.out.println(p + "b\t" + median(b));
        System.out.println(p + "c\t" + median(c));
        System.out.println(p + "d\t" + median(d));
        System.out.println(p + "a_cpu\t" + median(ac));
        System.out.println(p + "b_cpu\t" + bc);
        System.out.println(p + "c_cpu\t" + median(cc));
        System.out.println(p + "d_cpu\t" + median(dc));
    }

    public static void main(String[] args) throws Exception {
        int nA = Integer.parseInt(args[0]), nB = Integer.parseInt(args[1]), nC = Integer.parseInt(args[2]), nD = Integer.parseInt(args[3]), reps = Integer.parseInt(args[4]);
        run(Executors.newFixedThreadPool(2), "tpe.", nA, nB, nC, nD, reps);
        run(new ForkJoinPool(2), "fjp.", nA, nB, nC, nD, reps);
    }
}
"#;

/// For each Java pool: its system name and its `(workload key, median)` values.
pub(crate) type PeerValues = Vec<(String, Vec<(String, f64)>)>;

/// Runs the Java peers; or says why Java was skipped. The JVM counts its CPU time in clock
/// ticks (10 ms here), so a CPU-per-task figure is only as fine as 10 ms over the tasks timed:
/// short runs (`--quick`, the round trips) may read 0.
pub(crate) fn run(args: &[String]) -> Result<PeerValues, String> {
    let version = Command::new("java")
        .arg("-version")
        .output()
        .map_err(|e| format!("java not found ({e})"))?;
    Command::new("javac")
        .arg("-version")
        .output()
        .map_err(|e| format!("javac not found ({e})"))?;
    let version = String::from_utf8_lossy(&version.stderr);
    let major = version
        .split('"')
        .nth(1)
        .and_then(|v| v.split('.').next())
        .unwrap_or("?")
        .to_owned();
    let dir = crate::workspace_root()
        .join("target")
        .join("bench")
        .join("java");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("Bench.java"), SOURCE).map_err(|e| e.to_string())?;
    let javac = Command::new("javac")
        .arg("Bench.java")
        .current_dir(&dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !javac.status.success() {
        return Err(format!(
            "javac failed: {}",
            String::from_utf8_lossy(&javac.stderr)
        ));
    }
    let out = Command::new("java")
        .args(["-cp", "."])
        .arg("Bench")
        .args(args)
        .current_dir(&dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "java failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| {
            Ok((
                k.to_owned(),
                v.trim().parse::<f64>().map_err(|e| e.to_string())?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let pool = |prefix: &str| -> Vec<(String, f64)> {
        rows.iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), *v)))
            .collect()
    };
    Ok(vec![
        (format!("Java ThreadPoolExecutor ({major})"), pool("tpe.")),
        (format!("Java ForkJoinPool ({major})"), pool("fjp.")),
    ])
}
