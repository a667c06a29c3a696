//! pmd
