package configkeys

import (
	"fmt"
	"reflect"
)

// Each calls fn with the key and the addressable value of every setting
// of the struct v points to, in field order; prefix is put before each key.
func Each(v any, prefix string, fn func(key string, field reflect.Value, f reflect.StructField)) {
	each(reflect.ValueOf(v).Elem(), prefix, fn)
}

func each(v reflect.Value, prefix string, fn func(string, reflect.Value, reflect.StructField)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		key := f.Tag.Get("toml")
		switch {
		case key == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
			each(v.Field(i), prefix, fn)
		case key == "":
		case f.Type.Kind() == reflect.Struct:
			each(v.Field(i), prefix+key+".", fn)
		default:
			fn(prefix+key, v.Field(i), f)
		}
	}
}

// Diff lists the keys whose values differ between the structs x and y
// point to (of one type), in field order.
func Diff(x, y any) []string {
	var out []string
	ys := values(y)
	Each(x, "", func(key string, v reflect.Value, _ reflect.StructField) {
		if !reflect.DeepEqual(v.Interface(), ys[key].Interface()) {
			out = append(out, key)
		}
	})
	return out
}

// Keep sets each of keys in *next to its value in *cur (structs of one
// type) and returns the keys whose values it changed, in the order given.
// An unknown key is a programming error: Keep panics.
func Keep(cur, next any, keys []string) (changed []string) {
	curVals, nextVals := values(cur), values(next)
	for _, key := range keys {
		was, ok := curVals[key]
		if !ok {
			panic(fmt.Sprintf("configkeys: no setting %q in %T", key, cur))
		}
		now := nextVals[key]
		if !reflect.DeepEqual(was.Interface(), now.Interface()) {
			changed = append(changed, key)
			now.Set(was)
		}
	}
	return changed
}

// values maps each key of the struct v points to to its field.
func values(v any) map[string]reflect.Value {
	m := map[string]reflect.Value{}
	Each(v, "", func(key string, field reflect.Value, _ reflect.StructField) { m[key] = field })
	return m
}
