//! How segment files are written and read.

use std::fmt;
use std::str::FromStr;

/// `log.io.mode`: `direct` (O_DIRECT, page-aligned, the page cache never holds the data) or
/// `buffered` (through the page cache). Buffered exists so the same binary can be measured as
/// a page-cache design; both keep the same durability contract (fdatasync before an ack when
/// the flush policy asks for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IoMode {
    #[default]
    Direct,
    Buffered,
}

impl FromStr for IoMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "direct" => Ok(Self::Direct),
            "buffered" => Ok(Self::Buffered),
            other => Err(format!("'{other}' is not direct or buffered")),
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Direct => "direct",
            Self::Buffered => "buffered",
        })
    }
}
