//! Listen addresses as operators write them: `HOST:PORT` as the standard
//! library resolves it, or `:PORT` for every address of the host, as the
//! original program (written in Go) took it.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// The addresses `text` stands for, in the order to try binding them.
/// `:PORT` is IPv6's any address first (on Linux it takes IPv4 as well),
/// then IPv4's, for a host without IPv6.
pub fn resolve(text: &str) -> io::Result<Vec<SocketAddr>> {
    if let Some(port) = text.strip_prefix(':') {
        let port: u16 = port
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the port is not a number"))?;
        return Ok(vec![
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ]);
    }
    Ok(text.to_socket_addrs()?.collect())
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn addresses() {
        let all = resolve(":5331").unwrap();
        assert_eq!(all[0].to_string(), "[::]:5331");
        assert_eq!(all[1].to_string(), "0.0.0.0:5331");
        assert_eq!(
            resolve("127.0.0.1:80").unwrap()[0].to_string(),
            "127.0.0.1:80"
        );
        assert!(resolve(":http").is_err());
        assert!(resolve("5331").is_err());
    }
}
