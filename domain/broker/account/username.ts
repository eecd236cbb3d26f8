/** Lower-case so that `Alice` and `alice` cannot be two people; uniqueness across accounts is the caller's index. */
export const USERNAME = /^[a-z0-9][a-z0-9._-]{2,31}$/;

/** `USERNAME` in words, for whoever gets a username refused. */
export const USERNAME_RULE =
  '3 to 32 characters of a–z, 0–9, ".", "-" and "_", starting with a letter or digit';
