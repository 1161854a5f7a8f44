package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/internal/configkeys"
)

// LoadConfig reads a TOML file over the defaults. Unknown keys are an
// error, so that a misspelt key never silently keeps its default. A
// missing file is an error only when mustExist is set.
func LoadConfig(file string, mustExist bool) (Config, error) {
	cfg := DefaultConfig()
	if err := decodeConfigFile(file, mustExist, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

func decodeConfigFile(file string, mustExist bool, cfg *Config) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) && !mustExist {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	md, err := toml.Decode(string(b), cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", file, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown keys: %s", file, strings.Join(keys, ", "))
	}
	return nil
}

// ConfigFromArgs builds the configuration from defaults, the config file
// (--config, default DefaultConfigPath; a missing default file is fine, a
// missing named one is not) and the flags in args, in that order of
// precedence from lowest to highest. It returns the config and the path of
// the file it read. pflag.ErrHelp is returned after printing the usage for
// -h/--help.
func ConfigFromArgs(name string, args []string, usage func(*pflag.FlagSet)) (Config, string, error) {
	first := DefaultConfig()
	fset := NewConfigFlagSet(name, &first)
	if usage != nil {
		fset.Usage = func() { usage(fset) }
	}
	if err := fset.Parse(args); err != nil {
		return Config{}, "", err
	}
	if fset.NArg() > 0 {
		return Config{}, "", fmt.Errorf("unexpected argument %q (every setting is a --flag)", fset.Arg(0))
	}
	file, _ := fset.GetString("config")
	cfg := DefaultConfig()
	if err := decodeConfigFile(file, fset.Changed("config"), &cfg); err != nil {
		return Config{}, "", err
	}
	if err := replayFlags(fset, NewConfigFlagSet(name, &cfg)); err != nil {
		return Config{}, "", err
	}
	return cfg, file, cfg.Validate()
}

// replayFlags sets every flag given on the command line (parsed in from)
// in to, bound to the config read from the file: flags win.
func replayFlags(from, to *pflag.FlagSet) error {
	var err error
	from.Visit(func(f *pflag.Flag) {
		if err != nil || f.Name == "config" {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			err = to.Lookup(f.Name).Value.(pflag.SliceValue).Replace(sv.GetSlice())
		} else {
			err = to.Set(f.Name, f.Value.String())
		}
	})
	return err
}

// NewConfigFlagSet returns a flag set with one flag per config key, bound
// to cfg (whose values are the flags' defaults), plus --config.
func NewConfigFlagSet(name string, cfg *Config) *pflag.FlagSet {
	fset := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fset.SortFlags = false
	fset.SetNormalizeFunc(func(_ *pflag.FlagSet, n string) pflag.NormalizedName {
		return pflag.NormalizedName(kebab(n))
	})
	fset.String("config", DefaultConfigPath, "configuration file (TOML); flags override it")
	configkeys.Each(cfg, "", func(key string, v reflect.Value, f reflect.StructField) {
		bindFlag(fset, kebab(key), f.Tag.Get("help"), v)
	})
	return fset
}

// bindFlag registers the flag name for the config field v.
func bindFlag(fset *pflag.FlagSet, name, help string, v reflect.Value) {
	switch p := v.Addr().Interface().(type) {
	case *string:
		fset.StringVar(p, name, *p, help)
	case *bool:
		fset.BoolVar(p, name, *p, help)
	case *int:
		fset.IntVar(p, name, *p, help)
	case *int64:
		fset.Int64Var(p, name, *p, help)
	case *float64:
		fset.Float64Var(p, name, *p, help)
	case *[]string:
		fset.StringSliceVar(p, name, *p, help)
	case *[]int:
		fset.IntSliceVar(p, name, *p, help)
	default:
		panic(fmt.Sprintf("config key %s: no flag for type %s", name, v.Type()))
	}
}

// kebab turns camelCase into kebab-case: "instance.resources.cpuShares"
// becomes "instance.resources.cpu-shares".
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 && s[i-1] != '.' && s[i-1] != '-' {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		if r == '_' {
			r = '-'
		}
		b.WriteRune(r)
	}
	return b.String()
}
