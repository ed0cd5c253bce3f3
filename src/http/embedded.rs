//! Files compiled into the binary and served by name (the Agents page's and GraphiQL's): what
//! each is, and finding one. Each page sets its own caching and security headers.

pub const HTML: &str = "text/html; charset=utf-8";
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
pub const CSS: &str = "text/css; charset=utf-8";
pub const MARKDOWN: &str = "text/markdown; charset=utf-8";

pub struct Embedded {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

impl Embedded {
    pub const fn new(name: &'static str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        Self { name, content_type, bytes }
    }
}

/// The file of `files` called `name`; None for any other name, so nothing else is served.
pub fn find(files: &'static [Embedded], name: &str) -> Option<&'static Embedded> {
    files.iter().find(|file| file.name == name)
}
