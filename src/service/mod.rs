//! What a request means: parsed request + source address in, response out. No sockets.
