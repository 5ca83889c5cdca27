//! The demo server: bounded request and header lines, no paths outside the folder, `nosniff`
//! and the page's Content-Security-Policy (with the hash of the inline start-up script).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

fn start(root: &std::path::Path) -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    let root = root.to_path_buf();
    std::thread::spawn(move || foolmap_trainer::serve::serve_on(l, &root));
    port
}

fn ask(port: u16, request: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn the_server_bounds_requests_and_sends_its_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let html = "<html><head></head><body><script type=\"module\">start();</script></body></html>";
    std::fs::write(dir.path().join("index.html"), html).unwrap();
    std::fs::write(dir.path().join(".secret"), "no").unwrap();
    let port = start(dir.path());

    let ok = ask(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("X-Content-Type-Options: nosniff"));
    let csp = foolmap_trainer::site::csp_for(html);
    assert!(
        ok.contains(&format!("Content-Security-Policy: {csp}")),
        "{ok}"
    );
    assert!(csp.contains("'sha256-"));

    for path in ["/../Cargo.toml", "/.secret", "//etc/passwd"] {
        let r = ask(port, format!("GET {path} HTTP/1.1\r\n\r\n").as_bytes());
        assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
    }
    let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    assert!(ask(port, long.as_bytes()).starts_with("HTTP/1.1 400"));
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: b\r\n".repeat(500));
    assert!(ask(port, many.as_bytes()).starts_with("HTTP/1.1 431"));
    assert!(ask(port, b"POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    // An idle connection is closed by the read timeout, and the server still answers others.
    let idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(ask(port, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
    drop(idle);
}
