//! The `ThreadPoolExecutor` example of Python's `concurrent.futures` documentation: fetch pages
//! in parallel, map each future back to its URL, report them as they complete.
//!
//! ```text
//! cargo run --release --example load_url
//! ```
//!
//! No outside network: the example starts its own small HTTP server on 127.0.0.1 (it answers a
//! fixed number of requests, then stops), and one URL points at a port nobody listens on, so
//! one fetch fails as Python's `nonexistent-subdomain.python.org` does.

use concurrent_futures::{ThreadPoolExecutor, as_completed};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

/// The pages the server knows, and their sizes in bytes.
const PAGES: [(&str, usize); 4] = [
    ("/foxnews", 312_644),
    ("/cnn", 1_055_002),
    ("/wsj", 198_431),
    ("/bbc", 462_210),
];

/// Serves `requests` GET requests on `listener`, then returns.
fn serve(listener: TcpListener, requests: usize) {
    for stream in listener.incoming().take(requests) {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        // Read the whole request head, so closing the socket never discards unread bytes (which
        // would reset the connection under the client).
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        let path = String::from_utf8_lossy(&request)
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let response = match PAGES.iter().find(|(p, _)| *p == path) {
            Some(&(_, size)) => {
                let mut r =
                    format!("HTTP/1.0 200 OK\r\nContent-Length: {size}\r\n\r\n").into_bytes();
                r.resize(r.len() + size, b'x');
                r
            }
            None => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
        };
        let _ = stream.write_all(&response);
    }
}

/// Python's `load_url`: GET `url`, return the body.
fn load_url(url: &str, timeout: Duration) -> io::Result<Vec<u8>> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| io::Error::other("only http:// URLs"))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut conn = TcpStream::connect(host)?;
    conn.set_read_timeout(Some(timeout))?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())?;
    let mut response = Vec::new();
    conn.read_to_end(&mut response)?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("malformed response"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head.lines().next().unwrap_or("");
    if !status.contains(" 200 ") {
        return Err(io::Error::other(format!(
            "HTTP Error {}",
            status.trim_start_matches("HTTP/1.0 ")
        )));
    }
    Ok(response[split + 4..].to_vec())
}

fn main() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = thread::spawn(move || serve(listener, PAGES.len()));
    // A port that was free a moment ago and has no listener: the "nonexistent" site.
    let nowhere = TcpListener::bind("127.0.0.1:0")?.local_addr()?;

    let mut urls: Vec<String> = PAGES
        .iter()
        .map(|(path, _)| format!("http://{addr}{path}"))
        .collect();
    urls.push(format!("http://{nowhere}/"));

    let executor = ThreadPoolExecutor::builder()
        .max_workers(5)
        .build()
        .expect("5 workers");
    // Python's `{executor.submit(load_url, url, 60): url for url in URLS}`: futures are keys.
    // (A future hashes by its identity, which never changes; clippy only sees its locks.)
    #[allow(clippy::mutable_key_type)]
    let future_to_url: HashMap<_, &str> = urls
        .iter()
        .map(|url| {
            let owned = url.clone();
            let future = executor
                .spawn(move || load_url(&owned, Duration::from_secs(60)))
                .expect("pool is running");
            (future, url.as_str())
        })
        .collect();
    // Each future comes back with its URL.
    for item in as_completed(&future_to_url, None) {
        let (future, url) = item.expect("no timeout was set");
        match future.result_ref(None) {
            Ok(Ok(data)) => println!("'{url}' page is {} bytes", data.len()),
            Ok(Err(exc)) => println!("'{url}' generated an exception: {exc}"),
            Err(exc) => println!("'{url}' generated an exception: {exc}"),
        }
    }
    drop(executor);
    server.join().expect("the server thread does not panic");
    Ok(())
}
