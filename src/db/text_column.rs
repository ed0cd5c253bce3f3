//! Domain enums stored as their spelling in a text column. The capabilities own the enums and
//! their spelling (`crate::spelling`); this is the one place that tells sea-orm how to bind
//! and read them, so an entity's column is typed with the domain enum and no twin of it.

use sea_orm::{
    ColIdx, DbErr, QueryResult, TryGetError, TryGetable, Value,
    sea_query::{ArrayType, ColumnType, Nullable, StringLen, ValueType, ValueTypeErr},
};

macro_rules! text_column {
    ($($domain:ty),+ $(,)?) => {$(
        impl From<$domain> for Value {
            fn from(value: $domain) -> Self {
                value.as_str().into()
            }
        }

        impl TryGetable for $domain {
            fn try_get_by<I: ColIdx>(row: &QueryResult, index: I) -> Result<Self, TryGetError> {
                let text = String::try_get_by(row, index)?;
                <$domain>::parse(&text).ok_or_else(|| {
                    TryGetError::DbErr(DbErr::Type(format!("{text:?} is no {}", stringify!($domain))))
                })
            }
        }

        impl ValueType for $domain {
            fn try_from(value: Value) -> Result<Self, ValueTypeErr> {
                <$domain>::parse(&<String as ValueType>::try_from(value)?).ok_or(ValueTypeErr)
            }

            fn type_name() -> String {
                stringify!($domain).to_owned()
            }

            fn array_type() -> ArrayType {
                ArrayType::String
            }

            fn column_type() -> ColumnType {
                ColumnType::String(StringLen::None)
            }
        }

        impl Nullable for $domain {
            fn null() -> Value {
                Value::String(None)
            }
        }
    )+};
}

text_column!(
    crate::viewer::Role,
    crate::presence::model::Presence,
    crate::presence::model::PresenceReason,
    crate::routing::model::Status,
    crate::audit::model::Action,
    crate::audit::model::TargetType,
);
