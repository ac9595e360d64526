//! Go's variables as Tera names. Go scopes a variable to the control
//! structure (or template) that declares it and lets `$x = …` change a
//! variable of an enclosing scope; Tera scopes `set` to the loop it is in
//! (an `if` opens no scope) and reaches the top level with `set_global`.
//! Every Go declaration gets a Tera name of its own, so shadowing in Go
//! never becomes overwriting in Tera.

use std::collections::HashMap;

/// A Go variable as the converter knows it.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Its Tera name.
    pub tera: String,
    /// How many `for` loops enclose its declaration.
    pub loops: usize,
}

/// How an assignment `$x = …` is written.
#[derive(Debug, PartialEq, Eq)]
pub enum Assign {
    /// `{% set %}`: the variable lives in the current Tera scope.
    Set(String),
    /// `{% set_global %}`: it lives at the top level, outside every loop.
    Global(String),
    /// It lives in an enclosing loop's scope, which Tera cannot reach.
    Unreachable,
}

/// The variables in scope, innermost last.
#[derive(Debug, Default)]
pub struct Scopes {
    frames: Vec<HashMap<String, Variable>>,
    /// Frames that start a new template (a `{{template}}` call): lookups
    /// stop there, as Go's do.
    barriers: Vec<usize>,
    loops: usize,
    counter: usize,
}

impl Scopes {
    /// Scopes with `$` naming `root`.
    pub fn new(root: &str) -> Self {
        let mut scopes = Scopes::default();
        scopes.frames.push(HashMap::new());
        scopes.bind("$", root.to_string());
        scopes
    }

    /// Opens a Go scope (a control structure's body).
    pub fn push(&mut self) {
        self.frames.push(HashMap::new());
    }

    /// Closes it.
    pub fn pop(&mut self) {
        self.frames.pop();
    }

    /// Opens a template's scope: only `$` (bound to `root`) is visible.
    pub fn push_template(&mut self, root: &str) {
        self.barriers.push(self.frames.len());
        self.frames.push(HashMap::new());
        self.bind("$", root.to_string());
    }

    /// Closes a template's scope.
    pub fn pop_template(&mut self) {
        if let Some(at) = self.barriers.pop() {
            self.frames.truncate(at);
        }
    }

    /// Enters a `for` loop.
    pub fn enter_loop(&mut self) {
        self.loops += 1;
    }

    /// Leaves it.
    pub fn leave_loop(&mut self) {
        self.loops = self.loops.saturating_sub(1);
    }

    /// A fresh Tera name for helper variables (`_r1`, `_w2`).
    pub fn fresh(&mut self, stem: &str) -> String {
        self.counter += 1;
        format!("_{stem}{}", self.counter)
    }

    /// Declares Go variable `name` (`$x`) in the innermost scope; returns
    /// its Tera name.
    pub fn declare(&mut self, name: &str) -> String {
        let stem: String = name
            .trim_start_matches('$')
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let tera = self.fresh(&format!("v_{stem}_"));
        self.bind(name, tera.clone());
        tera
    }

    fn bind(&mut self, name: &str, tera: String) {
        let loops = self.loops;
        if let Some(frame) = self.frames.last_mut() {
            frame.insert(name.to_string(), Variable { tera, loops });
        }
    }

    /// The variable `name` refers to here.
    pub fn lookup(&self, name: &str) -> Option<&Variable> {
        let floor = self.barriers.last().copied().unwrap_or(0);
        self.frames[floor..]
            .iter()
            .rev()
            .find_map(|frame| frame.get(name))
    }

    /// How `$name = …` is written here.
    pub fn assign(&self, name: &str) -> Option<Assign> {
        let variable = self.lookup(name)?;
        Some(if variable.loops == self.loops {
            Assign::Set(variable.tera.clone())
        } else if variable.loops == 0 {
            Assign::Global(variable.tera.clone())
        } else {
            Assign::Unreachable
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadowing_gets_a_new_name_and_ends_with_its_scope() {
        let mut s = Scopes::new("none");
        let outer = s.declare("$x");
        s.push();
        let inner = s.declare("$x");
        assert_ne!(outer, inner);
        assert_eq!(s.lookup("$x").map(|v| v.tera.clone()), Some(inner));
        s.pop();
        assert_eq!(s.lookup("$x").map(|v| v.tera.clone()), Some(outer));
    }

    #[test]
    fn assignments_reach_the_top_level_but_not_an_outer_loop() {
        let mut s = Scopes::new("none");
        let top = s.declare("$n");
        s.enter_loop();
        s.push();
        assert_eq!(s.assign("$n"), Some(Assign::Global(top)));
        let in_loop = s.declare("$m");
        assert_eq!(s.assign("$m"), Some(Assign::Set(in_loop)));
        s.enter_loop();
        s.push();
        assert_eq!(s.assign("$m"), Some(Assign::Unreachable));
        assert_eq!(s.assign("$nope"), None);
    }

    #[test]
    fn a_template_sees_only_its_own_dollar() {
        let mut s = Scopes::new("none");
        s.declare("$x");
        s.push_template("_t1");
        assert!(s.lookup("$x").is_none());
        assert_eq!(
            s.lookup("$").map(|v| v.tera.clone()),
            Some("_t1".to_string())
        );
        s.pop_template();
        assert!(s.lookup("$x").is_some());
    }
}
