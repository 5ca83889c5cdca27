//! Paths and fixtures shared by the trainer's integration tests.
// Each test crate includes this module and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The steering repository's `shared/`: `$FOOLMAP_SHARED`, else `../shared` beside the repository.
pub fn shared() -> PathBuf {
    std::env::var("FOOLMAP_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("../shared"))
}

/// The data mirror: `shared()/data`.
pub fn shared_data() -> PathBuf {
    shared().join("data")
}

/// The pretrained CIFAR-10 ResNet-20 of the data mirror.
pub fn resnet20_weights() -> PathBuf {
    shared_data().join("weights/resnet20_cifar10.safetensors")
}

/// The fixtures' ResNet-20 batch: the input `[4, 3, 32, 32]` (flat, normalised) and its labels.
pub fn resnet20_fixture_batch() -> (Vec<f32>, Vec<usize>) {
    let path = shared().join("fixtures/resnet20_cifar10.safetensors");
    let fx =
        foolmap::StateDict::from_safetensors(&std::fs::read(&path).unwrap(), "fixture").unwrap();
    let labels = fx.tensors["labels"]
        .data
        .iter()
        .map(|&v| v as usize)
        .collect();
    (fx.tensors["input"].data.clone(), labels)
}

/// A file server on 127.0.0.1 for download tests ([`serve_files`]).
pub struct FileServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The path of every request so far, in order.
    pub requests: Arc<Mutex<Vec<String>>>,
}

/// Serves the files under `root` on 127.0.0.1 (any port) from a background thread: 200 with the
/// file's bytes, 404 for anything else.
pub fn serve_files(root: PathBuf) -> FileServer {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let mut r = BufReader::new(&stream);
            if r.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut h = String::new();
            while r.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            log.lock().unwrap().push(path.clone());
            let mut s = &stream;
            match std::fs::read(root.join(path.trim_start_matches('/'))) {
                Ok(body) => {
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(&body);
                }
                Err(_) => {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    FileServer {
        base: format!("http://127.0.0.1:{port}"),
        requests,
    }
}
