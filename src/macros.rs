//! Small macros shared by the modules.

/// Defines `pub struct $name(pub String)`: an error that is its message, for error kinds that
/// callers tell apart by type (`error.is::<RemoteRefused>()`) to decide what to do or how to exit.
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(pub String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::error::Error for $name {}
    };
}
