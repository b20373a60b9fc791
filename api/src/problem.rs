//! [`Problem`]: one thing wrong with one resource, and [`Problems`], all of them.

use std::fmt;

/// One problem with one resource, at one field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// The resource, e.g. `AIRoute default/main`.
    pub resource: String,
    /// The field path, e.g. `spec.rules[1].backends[0].name`; empty when the
    /// problem concerns the whole resource.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem with `resource` at `path`.
    pub fn new(
        resource: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            resource: resource.into(),
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.resource.is_empty(), self.path.is_empty()) {
            (true, true) => write!(f, "{}", self.message),
            (true, false) => write!(f, "{}: {}", self.path, self.message),
            (false, true) => write!(f, "{}: {}", self.resource, self.message),
            (false, false) => write!(f, "{}: {}: {}", self.resource, self.path, self.message),
        }
    }
}

impl std::error::Error for Problem {}

/// Every problem found; never empty when returned as an error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one problem.
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    /// Iterates over the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when there are no problems, otherwise `Err(self)`.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Self(vec![p])
    }
}

impl Extend<Problem> for Problems {
    fn extend<I: IntoIterator<Item = Problem>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl IntoIterator for Problems {
    type Item = Problem;
    type IntoIter = std::vec::IntoIter<Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Problems {
    type Item = &'a Problem;
    type IntoIter = std::slice::Iter<'a, Problem>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_resource_path_and_message() {
        let p = Problem::new(
            "AIRoute default/main",
            "spec.rules[1].backends[0].name",
            "AIBackend \"bedrock\" not found",
        );
        assert_eq!(
            p.to_string(),
            "AIRoute default/main: spec.rules[1].backends[0].name: AIBackend \"bedrock\" not found"
        );
        assert_eq!(
            Problem::new("AIRoute a/b", "", "bad").to_string(),
            "AIRoute a/b: bad"
        );
    }

    #[test]
    fn problems_display_one_per_line() {
        let ps = Problems(vec![
            Problem::new("A", "x", "1"),
            Problem::new("B", "y", "2"),
        ]);
        assert_eq!(ps.to_string(), "A: x: 1\nB: y: 2");
        assert_eq!(ps.len(), 2);
        assert_eq!(ps.iter().count(), 2);
    }
}
