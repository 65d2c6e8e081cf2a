//! Java's `ThreadPoolExecutor` as a peer, when `javac` and `java` are on PATH: a small program
//! compiled into `target/bench/java` and run with the workloads' sizes.

use std::process::Command;

const SOURCE: &str = r#"
import java.util.*;
import java.util.concurrent.*;

public class Bench {
    static double median(double[] xs) { Arrays.sort(xs); int m = xs.length / 2; return xs.length % 2 == 1 ? xs[m] : (xs[m - 1] + xs[m]) / 2; }

    public static void main(String[] args) throws Exception {
        int nA = Integer.parseInt(args[0]), nB = Integer.parseInt(args[1]), nC = Integer.parseInt(args[2]), nD = Integer.parseInt(args[3]), reps = Integer.parseInt(args[4]);
        ExecutorService ex = Executors.newFixedThreadPool(2);
        double[] a = new double[reps], c = new double[reps], d = new double[reps];
        for (int r = 0; r < reps; r++) {
            long t = System.nanoTime();
            List<Future<?>> fs = new ArrayList<>(nA);
            for (int i = 0; i < nA; i++) fs.add(ex.submit(() -> {}));
            for (Future<?> f : fs) f.get();
            a[r] = nA / ((System.nanoTime() - t) / 1e9);

            t = System.nanoTime();
            CompletionService<Integer> cs = new ExecutorCompletionService<>(ex);
            for (int i = 0; i < nC; i++) { final int k = i; cs.submit(() -> k); }
            for (int i = 0; i < nC; i++) cs.take();
            c[r] = (System.nanoTime() - t) / 1e3 / nC;

            t = System.nanoTime();
            List<Future<Long>> ds = new ArrayList<>(nD);
            for (int i = 0; i < nD; i++) { final long k = i; ds.add(ex.submit(() -> k * 2)); }
            long sum = 0;
            for (Future<Long> f : ds) sum += f.get();
            d[r] = nD / ((System.nanoTime() - t) / 1e9);
            if (sum < 0) System.out.println("impossible");
        }
        double[] b = new double[nB];
        for (int i = 0; i < nB; i++) {
            final int k = i;
            long t = System.nanoTime();
            ex.submit(() -> k).get();
            b[i] = (System.nanoTime() - t) / 1e3;
        }
        ex.shutdown();
        System.out.println("a\t" + median(a));
        System.out.println("b\t" + median(b));
        System.out.println("c\t" + median(c));
        System.out.println("d\t" + median(d));
    }
}
"#;

/// `(system name, [(workload key, median)])`, or why Java was skipped.
pub(crate) fn run(args: &[String]) -> Result<(String, Vec<(String, f64)>), String> {
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
    Ok((format!("Java {major} ThreadPoolExecutor"), rows))
}
