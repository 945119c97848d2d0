//! The syntax of the commands this receiver takes: the verb, the path of `MAIL FROM` and
//! `RCPT TO`, the `SIZE=` parameter and the bounce address.

use domain::MailRequestId;

/// The local part's prefix of a bounce address, `bounce+{id}@{domain}`.
const BOUNCE_PREFIX: &str = "bounce+";

/// The verb of a command line in upper case, and its arguments.
pub(super) fn split(line: &str) -> (String, &str) {
    let line = line.trim_start();
    let (verb, args) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    (verb.to_ascii_uppercase(), args.trim())
}

/// The address and the parameters of `FROM:<address> params` (`keyword` `FROM:`) or
/// `TO:<address> params` (`TO:`). A space after the colon and a missing pair of angle brackets
/// are tolerated, as many servers do; a source route (`<@relay:user@domain>`) is dropped.
pub(super) fn path<'l>(args: &'l str, keyword: &str) -> Option<(&'l str, &'l str)> {
    let head = args.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = args[keyword.len()..].trim_start();
    let (address, params) = match rest.strip_prefix('<') {
        Some(inside) => inside.split_once('>')?,
        None => rest.split_once([' ', '\t']).unwrap_or((rest, "")),
    };
    let address = match address.strip_prefix('@') {
        Some(routed) => routed.split_once(':')?.1,
        None => address,
    };
    if address.contains(char::is_whitespace) {
        return None;
    }
    Some((address, params.trim()))
}

/// The `SIZE=` parameter of `MAIL FROM` (RFC 1870), if given; `Err` when it is no number.
pub(super) fn declared_size(params: &str) -> Result<Option<u64>, ()> {
    params
        .split_whitespace()
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.eq_ignore_ascii_case("SIZE"))
        .map(|(_, value)| value.parse().map_err(|_| ()))
        .transpose()
}

/// The mail request id of a bounce address `bounce+{id}@{domain}`: the domain compared
/// without regard to case, the id a UUID. `None` for any other address.
pub(super) fn bounce_id(address: &str, domain: &str) -> Option<MailRequestId> {
    let (local, address_domain) = address.rsplit_once('@')?;
    if !address_domain.eq_ignore_ascii_case(domain) {
        return None;
    }
    let prefix = local.get(..BOUNCE_PREFIX.len())?;
    if !prefix.eq_ignore_ascii_case(BOUNCE_PREFIX) {
        return None;
    }
    local[BOUNCE_PREFIX.len()..].parse().ok()
}
