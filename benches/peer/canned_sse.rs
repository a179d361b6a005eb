//! A hand-written stand-in for an OpenAI-compatible streaming server, used
//! only by `benches/openai_peer.rs` to time what a *client* adds before its
//! first streamed token, apart from any real server's work.
//!
//! It listens on 127.0.0.1 (plain HTTP/1.1, keep-alive, `TCP_NODELAY`), reads
//! each request head and its `Content-Length` body, and answers every request
//! at once with the same event stream llama-cpp-python's server sends for a
//! four-token chat (a role chunk, one text chunk, a finish chunk, `[DONE]`),
//! chunked, one write per event, as uvicorn does. It notes, with the bench
//! process's own clock, when each request had fully arrived and when its first
//! text event was written, so a client's time splits into "before the server
//! had the request" and "after the text was on the wire".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The events, as llama-cpp-python 0.3.36 writes them (ids shortened).
const EVENTS: [&str; 4] = [
    "data: {\"id\": \"chatcmpl-1\", \"model\": \"smollm2-135m-instruct\", \"created\": 1796675933, \
     \"object\": \"chat.completion.chunk\", \"choices\": [{\"index\": 0, \"delta\": {\"role\": \
     \"assistant\"}, \"logprobs\": null, \"finish_reason\": null}]}\n\n",
    "data: {\"id\": \"chatcmpl-1\", \"model\": \"smollm2-135m-instruct\", \"created\": 1796675933, \
     \"object\": \"chat.completion.chunk\", \"choices\": [{\"index\": 0, \"delta\": {\"content\": \
     \"Red\"}, \"logprobs\": null, \"finish_reason\": null}]}\n\n",
    "data: {\"id\": \"chatcmpl-1\", \"model\": \"smollm2-135m-instruct\", \"created\": 1796675933, \
     \"object\": \"chat.completion.chunk\", \"choices\": [{\"index\": 0, \"delta\": {}, \
     \"logprobs\": null, \"finish_reason\": \"stop\"}]}\n\n",
    "data: [DONE]\n\n",
];
/// Index in [`EVENTS`] of the first event carrying text.
const FIRST_TEXT_EVENT: usize = 1;
/// The pause before the chunked body's terminator.
const END_DELAY: Duration = Duration::from_micros(200);
/// Largest request head or body read (the bench's requests are < 1 KiB).
const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// When the server saw the last request whole and wrote its first text.
#[derive(Debug, Clone, Copy)]
pub struct ServerTimes {
    /// The request head and body had been read.
    pub request_read: Instant,
    /// The first text event had been written to the socket.
    pub text_written: Instant,
}

/// The running stand-in: its address, the last request's times, and the
/// first request bytes (head and body) it received.
pub struct CannedSse {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    last: Arc<Mutex<Option<ServerTimes>>>,
    connections: Arc<AtomicUsize>,
    first_requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl CannedSse {
    /// Starts listening; the threads live as long as the process.
    pub fn start() -> CannedSse {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let last = Arc::new(Mutex::new(None));
        let first_requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (last2, first2, count) = (last.clone(), first_requests.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::Relaxed);
                let (last, first) = (last2.clone(), first2.clone());
                std::thread::spawn(move || serve(stream, &last, &first));
            }
        });
        CannedSse {
            url,
            last,
            connections,
            first_requests,
        }
    }

    /// The times of the request answered last, taken (so a stale value is
    /// never read twice).
    pub fn take_times(&self) -> Option<ServerTimes> {
        self.last.lock().expect("times").take()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The body of the `n`-th request received (head stripped), if any.
    pub fn request_body(&self, n: usize) -> Option<Vec<u8>> {
        let requests = self.first_requests.lock().expect("requests");
        let raw = requests.get(n)?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        Some(raw[split + 4..].to_vec())
    }

    /// The head of the `n`-th request received, as text, if any.
    pub fn request_head(&self, n: usize) -> Option<String> {
        let requests = self.first_requests.lock().expect("requests");
        let raw = requests.get(n)?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        Some(String::from_utf8_lossy(&raw[..split]).into_owned())
    }
}

/// Answers the requests of one connection until it closes or misbehaves.
fn serve(stream: TcpStream, last: &Mutex<Option<ServerTimes>>, first: &Mutex<Vec<Vec<u8>>>) {
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut writer = stream.try_clone().expect("clone socket");
    let mut reader = BufReader::new(stream);
    loop {
        let mut raw = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = Vec::new();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            raw.extend_from_slice(&line);
            if raw.len() > MAX_REQUEST_BYTES {
                return;
            }
            let text = String::from_utf8_lossy(&line);
            if let Some((name, value)) = text.split_once(':')
                && name.trim().eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(usize::MAX);
            }
            if line == b"\r\n" {
                break;
            }
        }
        if length > MAX_REQUEST_BYTES {
            return;
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request_read = Instant::now();
        raw.extend_from_slice(&body);
        {
            let mut first = first.lock().expect("requests");
            if first.len() < 4 {
                first.push(raw);
            }
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
                    cache-control: no-store\r\nconnection: keep-alive\r\n\
                    transfer-encoding: chunked\r\n\r\n";
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        for (i, event) in EVENTS.iter().enumerate() {
            let chunk = format!("{:x}\r\n{event}\r\n", event.len());
            if writer.write_all(chunk.as_bytes()).is_err() {
                return;
            }
            if i == FIRST_TEXT_EVENT {
                // Noted before `[DONE]` is written: a client that read the
                // stream to `[DONE]` always finds this request's times.
                let text_written = Instant::now();
                *last.lock().expect("times") = Some(ServerTimes {
                    request_read,
                    text_written,
                });
            }
        }
        // uvicorn writes the chunked body's end on its own, a moment after
        // the last event.
        std::thread::sleep(END_DELAY);
        if writer.write_all(b"0\r\n\r\n").is_err() {
            return;
        }
    }
}
