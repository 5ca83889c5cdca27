//! A small static file server on 127.0.0.1 for the built web app (`foolmap demo`): GET/HEAD
//! only, paths confined to the served folder, bounded request lines and connections, and the
//! app's Content-Security-Policy on every page.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use anyhow::{Context, Result};

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Longest request line or header line the server reads (bytes).
const MAX_LINE: usize = 8 * 1024;
/// Most header lines per request.
const MAX_HEADERS: usize = 100;
/// Most connections served at once; more are answered 503 at once.
const MAX_CONNECTIONS: usize = 32;

/// Reads one line of at most [`MAX_LINE`] bytes (`None`: too long, or the connection ended).
fn read_line<R: BufRead>(r: &mut R) -> Option<String> {
    let mut buf = Vec::new();
    let mut limited = <&mut R as std::io::Read>::take(r, MAX_LINE as u64 + 1);
    let n = limited.read_until(b'\n', &mut buf).ok()?;
    if n == 0 || n > MAX_LINE {
        return None;
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

fn status(s: &mut TcpStream, code: &str) -> Result<()> {
    write!(
        s,
        "HTTP/1.1 {code}\r\nContent-Length: 0\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n"
    )?;
    Ok(())
}

/// Answers `code` to a request that was not read to its end, then closes without a reset: the
/// sending side is shut first and the rest of the request (at most 1 MiB, for at most 2 s) is
/// read and dropped, because closing a socket with unread input makes the kernel reset the
/// connection, which can destroy the answer before the client has read it.
fn reject<R: Read>(s: &mut TcpStream, rest: &mut R, code: &str) -> Result<()> {
    status(s, code)?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(2)));
    let _ = std::io::copy(&mut rest.take(1 << 20), &mut std::io::sink());
    Ok(())
}

fn respond(mut s: TcpStream, root: &Path, csp: &str) -> Result<()> {
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    s.set_write_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let Some(line) = read_line(&mut r) else {
        return reject(&mut s, &mut r, "400 Bad Request");
    };
    // Headers are read (bounded) and ignored.
    let mut headers = 0;
    loop {
        match read_line(&mut r) {
            Some(h) if h.trim().is_empty() => break,
            Some(_) if headers < MAX_HEADERS => headers += 1,
            _ => return reject(&mut s, &mut r, "431 Request Header Fields Too Large"),
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return status(&mut s, "405 Method Not Allowed");
    }
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let rel = if path == "/" {
        "index.html"
    } else {
        path.trim_start_matches('/')
    };
    let file = root.join(rel);
    let safe = !rel
        .split('/')
        .any(|c| c == ".." || c.is_empty() || c.starts_with('.'));
    match (safe, std::fs::read(&file)) {
        (true, Ok(body)) => {
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
                 X-Content-Type-Options: nosniff\r\nContent-Security-Policy: {csp}\r\n\
                 Connection: close\r\n\r\n",
                mime(&file),
                body.len()
            )?;
            if method == "GET" {
                s.write_all(&body)?;
            }
        }
        _ => status(&mut s, "404 Not Found")?,
    }
    Ok(())
}

/// Serves `root` on 127.0.0.1:`port` until interrupted: at most [`MAX_CONNECTIONS`] at once,
/// each with read and write timeouts and bounded request and header lines.
pub fn serve(root: &Path, port: u16) -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("cannot listen on 127.0.0.1:{port} (busy? pass --port N)"))?;
    println!(
        "open http://127.0.0.1:{}/   (serving {}; Ctrl-C to stop)",
        listener.local_addr()?.port(),
        root.display()
    );
    serve_on(listener, root)
}

/// [`serve`] on a bound listener.
pub fn serve_on(listener: TcpListener, root: &Path) -> Result<()> {
    let live = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let csp: std::sync::Arc<str> =
        crate::site::csp_for(&std::fs::read_to_string(root.join("index.html")).unwrap_or_default())
            .into();
    for mut stream in listener.incoming().flatten() {
        use std::sync::atomic::Ordering;
        if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            live.fetch_sub(1, Ordering::SeqCst);
            let _ = status(&mut stream, "503 Service Unavailable");
            continue;
        }
        let root = root.to_path_buf();
        let live = live.clone();
        let csp = csp.clone();
        std::thread::spawn(move || {
            let _ = respond(stream, &root, &csp);
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
    Ok(())
}
