//! Enums with one spelling per value, the same in the database, the API and on the wire:
//! declared once with their spelling, they read and write it without a twin table.

/// Declares an enum whose variants each name their spelling (`Admin = "ADMIN"`), with
/// `as_str`, `parse` and `ALL`. `db::text_column` stores such enums as that text.
macro_rules! spelled_enum {
    (
        $(#[$meta:meta])*
        $visibility:vis enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $visibility enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub const ALL: &[Self] = &[$(Self::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use spelled_enum;
