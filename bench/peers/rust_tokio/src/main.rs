//! Peer: tokio echo server, a task per connection copying its reader to its
//! writer (tokio's own echo example), UDP on the same port. Benchmark
//! reference only, not part of eco.
//!
//!     tokio_echo PORT [THREADS]   (THREADS worker threads; 1 = current-thread runtime)

use tokio::io;
use tokio::net::{TcpListener, UdpSocket};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 2 {
        eprintln!("usage: tokio_echo PORT [THREADS]");
        std::process::exit(2);
    }
    let port: u16 = args[1].parse().expect("tokio_echo: bad PORT");
    let threads: usize = args.get(2).map(|t| t.parse().expect("tokio_echo: bad THREADS")).unwrap_or(0);
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads);
        }
        b.enable_all().build()?
    };
    rt.block_on(serve(port))
}

async fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let udp = UdpSocket::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            if let Ok((n, from)) = udp.recv_from(&mut buf).await {
                let _ = udp.send_to(&buf[..n], from).await;
            }
        }
    });
    loop {
        let (mut socket, _) = match listener.accept().await {
            Ok(s) => s,
            Err(_) => continue, // e.g. EMFILE: keep serving the connections we have
        };
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let (mut rd, mut wr) = socket.split();
            let _ = io::copy(&mut rd, &mut wr).await;
        });
    }
}
