//! `init --randomports`: free random ports for every listen address.

use rand::Rng;

use super::*;

/// Where random ports are picked: below Linux's default ephemeral range
/// (32768-60999), from which the kernel gives outgoing connections their
/// local ports. A port picked there is released after `init` and bound
/// again at the daemon's start: meanwhile any connection may take it.
const RANDOM_PORTS: std::ops::Range<u16> = 10_000..32_768;
/// Ports tried in that range before letting the kernel choose.
const TRIES: usize = 64;

/// Binds `bind` to a free random port of [`RANDOM_PORTS`] (the kernel's
/// choice if none of [`TRIES`] is free).
fn random_port<S>(bind: impl Fn(u16) -> std::io::Result<S>) -> std::io::Result<S> {
    let mut rng = rand::thread_rng();
    for _ in 0..TRIES {
        if let Ok(s) = bind(rng.gen_range(RANDOM_PORTS)) {
            return Ok(s);
        }
    }
    bind(0)
}

/// Sockets bound while picking random ports, so no port is picked twice;
/// released when dropped.
#[derive(Debug, Default)]
pub(super) struct HeldPorts {
    tcp: Vec<TcpListener>,
    udp: Vec<UdpSocket>,
}

impl HeldPorts {
    pub(super) fn randomize(&mut self, addr: &Multiaddr, key: &str) -> Result<Multiaddr> {
        let mut ip = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut out = Multiaddr::empty();
        let io_err = |source| ConfigError::Io {
            path: PathBuf::from(format!("{key} ({addr})")),
            source,
        };
        for p in addr.iter() {
            match p {
                Protocol::Ip4(a) => {
                    ip = IpAddr::V4(a);
                    out.push(p);
                }
                Protocol::Ip6(a) => {
                    ip = IpAddr::V6(a);
                    out.push(p);
                }
                Protocol::Tcp(_) => {
                    let l = random_port(|port| TcpListener::bind((ip, port))).map_err(io_err)?;
                    out.push(Protocol::Tcp(l.local_addr().map_err(io_err)?.port()));
                    self.tcp.push(l);
                }
                Protocol::Udp(_) => {
                    let s = random_port(|port| UdpSocket::bind((ip, port))).map_err(io_err)?;
                    out.push(Protocol::Udp(s.local_addr().map_err(io_err)?.port()));
                    self.udp.push(s);
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

/// Randomizes the ports of a JSON string or array of strings in place.
pub(super) fn randomize_json_addrs(v: &mut Value, key: &str, held: &mut HeldPorts) -> Result<()> {
    let mut one = |s: &mut String, key: &str| -> Result<()> {
        let addr: Multiaddr = s
            .parse()
            .map_err(|e| invalid(key, format!("{s:?} is not a multiaddr: {e}")))?;
        *s = held.randomize(&addr, key)?.to_string();
        Ok(())
    };
    match v {
        Value::String(s) if !s.is_empty() => one(s, key),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::String(s) = item {
                    one(s, &format!("{key}[{i}]"))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
