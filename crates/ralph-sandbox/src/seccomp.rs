//! The seccomp filter (stub; being written).
#[derive(Debug)]
pub struct Filter;
impl Filter {
    pub fn deny_escapes() -> Filter {
        Filter
    }
    pub fn supported() -> bool {
        false
    }
    pub fn install(&self) -> std::io::Result<()> {
        Ok(())
    }
}
pub const DENIED: &[&str] = &[];
