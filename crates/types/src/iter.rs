//! Iterating stores that can fail: [`until_error`].

/// `iter` up to and including its first error, then nothing: a sled
/// iterator may yield the same error forever (a read that must split a
/// node fails again and again once the store can't write, e.g. on a full
/// disk), and a caller that skips errors would spin.
pub fn until_error<T, E>(
    iter: impl Iterator<Item = Result<T, E>>,
) -> impl Iterator<Item = Result<T, E>> {
    let mut failed = false;
    iter.map_while(move |item| {
        if failed {
            return None;
        }
        failed = item.is_err();
        Some(item)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_error_stops_after_the_first_error() {
        // What sled does on a store that can't write: the same error forever.
        let items = [Ok(1), Ok(2)]
            .into_iter()
            .chain(std::iter::repeat_with(|| Err("can't split")));
        let seen: Vec<_> = until_error(items).collect();
        assert_eq!(seen, [Ok(1), Ok(2), Err("can't split")]);
        // Skipping errors ends too, rather than spinning.
        let items = [Ok(1)]
            .into_iter()
            .chain(std::iter::repeat_with(|| Err("can't split")));
        assert_eq!(until_error(items).flatten().collect::<Vec<_>>(), [1]);
    }
}
