//! Sockets, below every protocol: the addresses we listen on and connect to
//! (`inet:HOST:PORT`, `unix:PATH`, Postfix's syntax), binding them safely, and one
//! stream type over TCP and UNIX sockets.

pub mod listen;
pub mod stream;

pub use listen::{BindError, ListenAddr, Listener};
pub use stream::Stream;
