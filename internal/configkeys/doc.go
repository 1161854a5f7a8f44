// Package configkeys reads config structs by the TOML keys of their
// fields, so that the agent and the daemon can name a setting the way the
// config file does ("instance.labelPrefix") when they compare two configs
// or keep a setting at its running value.
//
// A field is a setting when it carries a toml tag; a struct field is a
// table whose keys are prefixed with its own ("instance."). An embedded
// struct without a tag is flattened into its parent, as the TOML decoder
// does.
package configkeys
