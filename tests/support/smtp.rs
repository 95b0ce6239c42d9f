//! A small SMTP server on 127.0.0.1 for the alert tests: a real SMTP conversation over TCP
//! (greeting, EHLO, AUTH PLAIN, MAIL FROM, RCPT TO, DATA, QUIT), each received mail kept.
//! It can answer `421` to every new connection (a server that is down for now) and count the
//! conversations.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One mail as received.
#[derive(Debug, Clone, Default)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent after DATA (headers and body), dot-stuffing undone.
    pub data: String,
    /// The `AUTH PLAIN` credentials given, decoded (`\0user\0password`).
    pub auth: Option<String>,
}

impl ReceivedMail {
    /// The headers, folded lines joined, as (name, value).
    pub fn headers(&self) -> Vec<(String, String)> {
        let head = self.data.split("\n\n").next().unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        headers
    }

    /// The `Subject:` header, unfolded.
    pub fn subject(&self) -> String {
        self.headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("subject"))
            .map(|(_, v)| v)
            .unwrap_or_default()
    }

    /// The body, quoted-printable decoded when so encoded.
    pub fn body(&self) -> String {
        let body = self
            .data
            .split_once("\n\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let quoted = self.headers().iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("content-transfer-encoding")
                && v.eq_ignore_ascii_case("quoted-printable")
        });
        if !quoted {
            return body.to_owned();
        }
        let joined = body.replace("=\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 2 < bytes.len() {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[derive(Default)]
struct State {
    mails: Mutex<Vec<ReceivedMail>>,
    refusing: AtomicBool,
    connections: AtomicUsize,
}

/// The running server (stops when dropped).
pub struct SmtpReceiver {
    pub port: u16,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpReceiver {
    pub async fn start() -> SmtpReceiver {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("SMTP receiver: {e}"),
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let state = Arc::new(State::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = converse(socket, state).await;
                });
            }
        });
        SmtpReceiver { port, state, task }
    }

    /// `smtp://127.0.0.1:<port>` (plain: the tests need no certificate).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Answers `421` to new connections while `true`.
    pub fn refuse(&self, refusing: bool) {
        self.state.refusing.store(refusing, Ordering::SeqCst);
    }

    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.state
            .mails
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }

    /// Conversations opened so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }
}

async fn converse(socket: tokio::net::TcpStream, state: Arc<State>) -> std::io::Result<()> {
    state.connections.fetch_add(1, Ordering::SeqCst);
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    if state.refusing.load(Ordering::SeqCst) {
        write
            .write_all(b"421 4.3.2 test server busy, try again later\r\n")
            .await?;
        return Ok(());
    }
    write.write_all(b"220 test.local ESMTP ready\r\n").await?;
    let mut mail = ReceivedMail::default();
    let mut auth = None;
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-test.local\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                .await?;
        } else if upper.starts_with("HELO") {
            write.write_all(b"250 test.local\r\n").await?;
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = line.split_whitespace().nth(2).unwrap_or("");
            auth = base64_decode(encoded);
            write.write_all(b"235 2.7.0 authenticated\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            mail = ReceivedMail {
                from: line[10..].trim().to_owned(),
                auth: auth.clone(),
                ..Default::default()
            };
            write.write_all(b"250 2.1.0 ok\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_owned());
            write.write_all(b"250 2.1.5 ok\r\n").await?;
        } else if upper == "DATA" {
            write
                .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            let mut data = String::new();
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push('\n');
            }
            mail.data = data;
            if let Ok(mut mails) = state.mails.lock() {
                mails.push(std::mem::take(&mut mail));
            }
            write.write_all(b"250 2.0.0 queued\r\n").await?;
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            write.write_all(b"250 2.0.0 ok\r\n").await?;
        } else {
            write.write_all(b"502 5.5.2 not implemented\r\n").await?;
        }
    }
    Ok(())
}

fn base64_decode(text: &str) -> Option<String> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}
