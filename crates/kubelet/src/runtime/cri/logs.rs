//! Container logs from CRI log files. Each line the runtime writes is
//! `<RFC3339Nano> <stdout|stderr> <F|P> <content>`: `F` ends a line, `P` is a piece of a
//! longer one. The kubelet serves the content, optionally with the timestamps, after
//! `sinceSeconds`, the last `tailLines`, at most `limitBytes`; with `follow`, new lines
//! as they come until the container exits.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use cri::{CriClient, proto};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::runtime::{LogOptions, LogStream, RuntimeError};

/// How often a followed log is checked for growth.
const FOLLOW_POLL: Duration = Duration::from_millis(200);
/// How often a followed container is asked whether it still runs.
const STATE_POLL: Duration = Duration::from_secs(1);

/// A container to follow: its log ends when it stops running.
#[derive(Debug, Clone)]
pub struct Follow {
    client: CriClient,
    id: String,
}

impl Follow {
    pub fn new(client: CriClient, id: String) -> Self {
        Follow { client, id }
    }

    async fn running(&self) -> bool {
        self.client
            .container_status(&self.id)
            .await
            .is_ok_and(|s| s.state == proto::ContainerState::ContainerRunning as i32)
    }
}

/// One parsed line of a CRI log file.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub timestamp: &'a [u8],
    pub time: Option<SystemTime>,
    /// `F`: the content ends a line.
    pub full: bool,
    pub content: &'a [u8],
}

/// Parses one line (without its newline); None for a malformed one.
pub fn parse(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let timestamp = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or(b"");
    if stream != b"stdout" && stream != b"stderr" {
        return None;
    }
    let time = std::str::from_utf8(timestamp)
        .ok()
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(SystemTime::from);
    Some(Entry {
        timestamp,
        time,
        full: !tag.starts_with(b"P"),
        content,
    })
}

/// Renders entries of complete lines as the client sees them.
fn render<'a>(entries: impl Iterator<Item = Entry<'a>>, timestamps: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if timestamps {
            out.extend_from_slice(e.timestamp);
            out.push(b' ');
        }
        out.extend_from_slice(e.content);
        if e.full {
            out.push(b'\n');
        }
    }
    out
}

/// The entries of the complete lines in `data`, and how many bytes they took.
fn complete_lines(data: &[u8]) -> (Vec<Entry<'_>>, usize) {
    let end = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let entries = data[..end]
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(parse)
        .collect();
    (entries, end)
}

/// The first batch: what the file holds now, filtered by since and tail.
pub fn initial(data: &[u8], options: &LogOptions) -> (Vec<u8>, usize) {
    let (entries, used) = complete_lines(data);
    let mut entries: Vec<Entry<'_>> = entries
        .into_iter()
        .filter(|e| match (options.since, e.time) {
            (Some(since), Some(time)) => time >= since,
            _ => true,
        })
        .collect();
    if let Some(tail) = options.tail_lines {
        let keep = usize::try_from(tail).unwrap_or(usize::MAX);
        let skip = entries.len().saturating_sub(keep);
        entries.drain(..skip);
    }
    (render(entries.into_iter(), options.timestamps), used)
}

/// What is left of the byte budget after `sent` bytes, cutting `chunk` to it.
fn within_limit(mut chunk: Vec<u8>, limit: Option<u64>, sent: &mut u64) -> (Vec<u8>, bool) {
    let Some(limit) = limit else {
        return (chunk, false);
    };
    let left = limit.saturating_sub(*sent);
    let left_usize = usize::try_from(left).unwrap_or(usize::MAX);
    let full = chunk.len() >= left_usize;
    chunk.truncate(left_usize);
    *sent += chunk.len() as u64;
    (chunk, full)
}

async fn read_from(path: &PathBuf, offset: u64) -> std::io::Result<Vec<u8>> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(SeekFrom::Start(offset)).await?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).await?;
    Ok(data)
}

/// The log at `path` as a stream of chunks.
pub async fn stream(
    path: PathBuf,
    options: LogOptions,
    follow: Option<Follow>,
) -> Result<LogStream, RuntimeError> {
    let data = match read_from(&path, 0).await {
        Ok(data) => data,
        // Nothing written yet (or the runtime keeps no file): an empty log.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(RuntimeError::Failed {
                operation: "reading the container log".into(),
                message: format!("{}: {e}", path.display()),
            });
        }
    };
    let (first, used) = initial(&data, &options);
    let mut sent = 0;
    let (first, exhausted) = within_limit(first, options.limit_bytes, &mut sent);
    let head = futures::stream::iter((!first.is_empty()).then(|| Ok(Bytes::from(first))));
    let Some(follow) = follow.filter(|_| !exhausted) else {
        return Ok(head.boxed());
    };
    let (mut tx, rx) = mpsc::channel(16);
    let mut offset = used as u64;
    tokio::spawn(async move {
        let mut last_check = tokio::time::Instant::now();
        let mut running = true;
        loop {
            tokio::time::sleep(FOLLOW_POLL).await;
            if tx.is_closed() {
                return;
            }
            // Read once more after the container stopped: its last lines.
            let stopping = !running;
            let data = read_from(&path, offset).await.unwrap_or_default();
            let (entries, used) = complete_lines(&data);
            offset += used as u64;
            let chunk = render(entries.into_iter(), options.timestamps);
            if !chunk.is_empty() {
                let (chunk, exhausted) = within_limit(chunk, options.limit_bytes, &mut sent);
                if tx.send(Ok(Bytes::from(chunk))).await.is_err() || exhausted {
                    return;
                }
            }
            if stopping {
                return;
            }
            if last_check.elapsed() >= STATE_POLL {
                last_check = tokio::time::Instant::now();
                running = follow.running().await;
            }
        }
    });
    Ok(head.chain(rx).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2024-01-01T00:00:01.000000001Z stdout F one\n\
2024-01-01T00:00:02.5Z stderr F two\n\
2024-01-01T00:00:03Z stdout P thr\n\
2024-01-01T00:00:03Z stdout F ee\n\
garbage\n\
2024-01-01T00:00:04Z stdout F half";

    #[test]
    fn lines_parse() {
        let e = parse(b"2024-01-01T00:00:02.5Z stderr F two words").expect("entry");
        assert_eq!(e.content, b"two words");
        assert!(e.full);
        assert_eq!(
            e.time,
            Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_704_067_202_500))
        );
        assert!(parse(b"x y").is_none());
        assert!(parse(b"2024 stdin F x").is_none());
    }

    #[test]
    fn options_shape_the_first_batch() {
        let all = initial(LOG, &LogOptions::default());
        assert_eq!(all.0, b"one\ntwo\nthree\n");
        // The unfinished last line waits for its newline.
        assert_eq!(
            all.1,
            LOG.len() - b"2024-01-01T00:00:04Z stdout F half".len()
        );
        let tail = initial(
            LOG,
            &LogOptions {
                tail_lines: Some(1),
                timestamps: true,
                ..LogOptions::default()
            },
        );
        assert_eq!(tail.0, b"2024-01-01T00:00:03Z ee\n");
        let since = initial(
            LOG,
            &LogOptions {
                since: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_202)),
                ..LogOptions::default()
            },
        );
        assert_eq!(since.0, b"two\nthree\n");
        let mut sent = 0;
        let (cut, full) = within_limit(b"abcdef".to_vec(), Some(4), &mut sent);
        assert_eq!((cut.as_slice(), full, sent), (&b"abcd"[..], true, 4));
    }
}
