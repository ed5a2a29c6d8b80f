//! Protected paths: the glob set of `safety.protected_paths`, and the lexical normalisation of
//! paths relative to the project root that both guards use.

use std::path::{Component, Path};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::{Blocked, GuardError};

/// The default `safety.protected_paths`.
pub const DEFAULT_PROTECTED_PATHS: &[&str] = &[".git/**", ".ralph/**", "ralph.toml"];

/// The rule id for a write to a protected path.
pub const PROTECTED_PATH_RULE: &str = "protected-path";

/// Lexically normalised components of an absolute or relative path (`.` dropped, `..`
/// applied; `None` if `..` climbs above the start of a relative path).
pub(super) fn norm_components(path: &Path) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() && !path.is_absolute() {
                    return None;
                }
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
        }
    }
    Some(out)
}

/// `path` relative to `project_root` (both normalised lexically): an absolute path must be
/// inside the root, a relative one is taken as relative to it. `None` outside the root and for
/// the root itself.
pub fn relative_to_root(path: &str, project_root: &Path) -> Option<String> {
    let p = Path::new(path);
    let rel = if p.is_absolute() {
        let root = norm_components(project_root)?;
        let comps = norm_components(p)?;
        comps.strip_prefix(root.as_slice())?.to_vec()
    } else {
        norm_components(p)?
    };
    if rel.is_empty() {
        None
    } else {
        Some(rel.join("/"))
    }
}

pub(super) fn protected(rel: &str, glob: &str) -> Blocked {
    Blocked {
        rule: PROTECTED_PATH_RULE.to_string(),
        reason: format!("`{rel}` is a protected path (`{glob}` in safety.protected_paths)"),
    }
}

/// Protected paths: globs relative to the project root (`safety.protected_paths`).
#[derive(Debug, Clone)]
pub struct PathGuard {
    globs: Vec<String>,
    set: GlobSet,
    /// For each glob of `set`, the index of the configured glob it came from.
    origin: Vec<usize>,
}

impl PathGuard {
    /// Exactly these globs (the configuration's value replaces the default set).
    pub fn new(globs: &[String]) -> Result<PathGuard, GuardError> {
        let mut builder = GlobSetBuilder::new();
        let mut origin = Vec::new();
        for (i, g) in globs.iter().enumerate() {
            let bad = |message: String| GuardError::InvalidGlob {
                glob: g.clone(),
                message,
            };
            let mut norm = g.trim();
            while let Some(rest) = norm.strip_prefix("./") {
                norm = rest;
            }
            let norm = norm.trim_start_matches('/');
            if norm.is_empty() {
                return Err(bad("empty".to_string()));
            }
            let norm = if norm.ends_with('/') {
                format!("{norm}**")
            } else {
                norm.to_string()
            };
            let mut variants = vec![norm.clone()];
            if let Some(dir) = norm.strip_suffix("/**") {
                if !dir.is_empty() {
                    variants.push(dir.to_string());
                }
            }
            for v in variants {
                let glob = GlobBuilder::new(&v)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| bad(e.kind().to_string()))?;
                builder.add(glob);
                origin.push(i);
            }
        }
        let set = builder.build().map_err(|e| GuardError::InvalidGlob {
            glob: globs.join(", "),
            message: e.to_string(),
        })?;
        Ok(PathGuard {
            globs: globs.to_vec(),
            set,
            origin,
        })
    }

    /// [`DEFAULT_PROTECTED_PATHS`].
    pub fn defaults() -> Result<PathGuard, GuardError> {
        let globs: Vec<String> = DEFAULT_PROTECTED_PATHS
            .iter()
            .map(|g| g.to_string())
            .collect();
        PathGuard::new(&globs)
    }

    /// The configured globs.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }

    /// The first glob (as configured) matching `rel_path`, a path relative to the project root
    /// (normalised lexically first; a path leaving the root matches nothing).
    pub fn matches(&self, rel_path: &str) -> Option<&str> {
        let rel = relative_to_root(rel_path.trim_start_matches('/'), Path::new("/"))?;
        let hits = self.set.matches(&rel);
        let first = hits.into_iter().filter_map(|i| self.origin.get(i)).min()?;
        self.globs.get(*first).map(String::as_str)
    }

    /// [`matches`](Self::matches) for a path as a tool names it: absolute paths must be inside
    /// `project_root`, relative ones are relative to it.
    pub fn check_path(&self, path: &str, project_root: &Path) -> Option<&str> {
        let rel = relative_to_root(path, project_root)?;
        self.matches(&rel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let root = Path::new("/p/proj");
        assert_eq!(
            relative_to_root("/p/proj/.git/config", root).as_deref(),
            Some(".git/config")
        );
        assert_eq!(
            relative_to_root("./src/../ralph.toml", root).as_deref(),
            Some("ralph.toml")
        );
        assert_eq!(relative_to_root("/p/other/x", root), None);
        assert_eq!(relative_to_root("../x", root), None);
        assert_eq!(relative_to_root("/p/proj", root), None);
    }
}
