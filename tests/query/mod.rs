//! Query language tests across stores.

mod props;
