//! Accepted connections that do not stay open for nothing: a connection on
//! which no RPC started within `first_call` of connecting, or on which none
//! has been running for `idle`, is closed. HTTP/2 keepalive pings do
//! not count as use, so a client that answers pings but calls nothing is
//! still closed; its channel reconnects on the next call.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// What the RPC layer reports of one connection's use.
#[derive(Debug)]
pub struct ConnActivity {
    opened: Instant,
    /// RPCs (including open streams) running on the connection.
    in_flight: AtomicUsize,
    /// Milliseconds since `opened` when an RPC last started or ended;
    /// `u64::MAX` until the first one.
    last_use: AtomicU64,
}

impl ConnActivity {
    fn new() -> Self {
        Self { opened: Instant::now(), in_flight: AtomicUsize::new(0), last_use: AtomicU64::new(u64::MAX) }
    }

    fn touch(&self) {
        self.last_use.store(self.opened.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// An RPC started; the returned guard ends it.
    pub fn begin(self: &Arc<Self>) -> ConnUse {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        ConnUse(self.clone())
    }

    /// When the connection may be closed, if nothing starts before then.
    fn close_at(&self, first_call: Duration, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.last_use.load(Ordering::Acquire) {
            u64::MAX => Some(self.opened + first_call),
            ms => Some(self.opened + Duration::from_millis(ms) + idle),
        }
    }
}

/// One RPC's use of its connection.
#[derive(Debug)]
pub struct ConnUse(Arc<ConnActivity>);

impl Drop for ConnUse {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// The connection info tonic puts in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub tcp: TcpConnectInfo,
    pub activity: Arc<ConnActivity>,
}

/// A TCP connection that reads end-of-file once it has been unused too long.
pub struct IdleClosing {
    stream: TcpStream,
    activity: Arc<ConnActivity>,
    first_call: Duration,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl IdleClosing {
    pub fn new(stream: TcpStream, first_call: Duration, idle: Duration) -> Self {
        let activity = Arc::new(ConnActivity::new());
        let timer = Box::pin(tokio::time::sleep(first_call));
        Self { stream, activity, first_call, idle, timer }
    }

    /// Whether the connection has been unused long enough to close; re-arms
    /// the timer otherwise. Registers the waker with the timer.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let now = Instant::now();
            match self.activity.close_at(self.first_call, self.idle) {
                Some(at) if at <= now => return true,
                Some(at) => self.timer.as_mut().reset(at.into()),
                // In use: look again after a full idle period.
                None => self.timer.as_mut().reset((now + self.idle).into()),
            }
        }
    }
}

impl Connected for IdleClosing {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        ConnInfo { tcp: self.stream.connect_info(), activity: self.activity.clone() }
    }
}

impl AsyncRead for IdleClosing {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.expired(cx) {
            metrics::counter!("crm_connections_closed_idle_total").increment(1);
            // End of file: the HTTP/2 server closes the connection.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for IdleClosing {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn a_connection_that_never_calls_is_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let _client = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
        let (server_side, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let mut conn = IdleClosing::new(server_side, Duration::from_millis(100), Duration::from_secs(60));
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0))), "end of file after the first-call timeout");
        assert!(started.elapsed() >= Duration::from_millis(90));
    }

    #[tokio::test]
    async fn a_connection_in_use_stays_open_and_closes_after_idle() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let _client = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
        let (server_side, _) = listener.accept().await.unwrap_or_else(|e| panic!("{e}"));
        let mut conn = IdleClosing::new(server_side, Duration::from_millis(50), Duration::from_millis(200));
        let call = conn.activity.begin();
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_millis(400), conn.read(&mut buf)).await;
        assert!(read.is_err(), "still open while an RPC runs");
        drop(call);
        let started = Instant::now();
        let n = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
        assert!(matches!(n, Ok(Ok(0))));
        assert!(started.elapsed() >= Duration::from_millis(150), "closed only after the idle period");
    }
}
