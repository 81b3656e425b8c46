package webui

import (
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lambgate/lambgate/appliance/settings"
)

// field is one input of a settings form. Key is the settings key that
// settings.FieldError uses, so a validation error lands next to its input.
type field struct {
	Key     string
	Label   string
	Kind    string // text, number, bool, list, select
	Value   string
	Checked bool
	Options []string
	Help    string
	Error   string
}

// section is one table of the settings file.
type section struct {
	Title  string
	Fields []field
}

// choices are the allowed values of the settings that take one of a list.
var choices = map[string][]string{
	"recipients.validation": {settings.ValidateAcceptAll, settings.ValidateStatic,
		settings.ValidateFile, settings.ValidateCallout},
	"recipients.unknown": {settings.UnknownReject, settings.UnknownBounce, settings.UnknownDiscard},
	"log.level":          {"debug", "info", "warn", "error"},
}

var durationType = reflect.TypeFor[settings.Duration]()

// formSections lists every setting of s, one section per table plus one
// per interface and an empty interface to add. keep, when not nil, limits
// the fields to those it returns true for.
func formSections(s *settings.Settings, errs map[string]string, keep func(key string) bool) []section {
	general := section{Title: "General"}
	var out []section
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		name := tomlName(f)
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			sec := section{Title: "[" + name + "]", Fields: structFields(name+".", fv, errs, keep)}
			if len(sec.Fields) > 0 {
				out = append(out, sec)
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			for j := 0; j <= fv.Len(); j++ {
				elem := reflect.New(f.Type.Elem()).Elem()
				title := fmt.Sprintf("[[%s]] %d", name, j+1)
				if j < fv.Len() {
					elem = fv.Index(j)
				} else {
					title = fmt.Sprintf("[[%s]] new (leave the name empty to add none)", name)
				}
				prefix := fmt.Sprintf("%s[%d].", name, j)
				sec := section{Title: title, Fields: structFields(prefix, elem, errs, keep)}
				if len(sec.Fields) > 0 {
					out = append(out, sec)
				}
			}
		default:
			if keep == nil || keep(name) {
				general.Fields = append(general.Fields, makeField(name, fv, errs))
			}
		}
	}
	if len(general.Fields) > 0 {
		out = append([]section{general}, out...)
	}
	return out
}

func structFields(prefix string, v reflect.Value, errs map[string]string, keep func(string) bool) []field {
	var out []field
	for i := range v.NumField() {
		key := prefix + tomlName(v.Type().Field(i))
		if keep != nil && !keep(key) {
			continue
		}
		out = append(out, makeField(key, v.Field(i), errs))
	}
	return out
}

func makeField(key string, v reflect.Value, errs map[string]string) field {
	f := field{Key: key, Label: key[strings.LastIndex(key, ".")+1:], Help: helpFor(key), Error: errs[key]}
	f.Label = strings.ReplaceAll(f.Label, "_", " ")
	switch {
	case v.Type() == durationType:
		f.Kind = "text"
		f.Value = time.Duration(v.Int()).String()
	case v.Kind() == reflect.Bool:
		f.Kind = "bool"
		f.Checked = v.Bool()
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		f.Kind = "number"
		f.Value = strconv.FormatInt(v.Int(), 10)
	case v.Kind() == reflect.Slice:
		f.Kind = "list"
		f.Value = strings.Join(v.Interface().([]string), "\n")
	default:
		f.Kind = "text"
		f.Value = v.String()
	}
	if opts, ok := choices[key]; ok {
		f.Kind = "select"
		f.Options = opts
	}
	return f
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

var indexedKey = regexp.MustCompile(`^([a-z_]+)\[(\d+)\]\.`)

// applyForm sets every setting whose key the form carries and leaves the
// others as they are, so the wizard can post a subset. A list of tables is
// rebuilt from its indexed keys when the form carries any of them, and an
// entry whose fields are all empty is dropped. Values that do not parse are
// returned as settings.Errors; Validate still has to run afterwards.
func applyForm(s *settings.Settings, form url.Values) settings.Errors {
	var errs settings.Errors
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		name := tomlName(f)
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != durationType:
			errs = append(errs, applyStruct(name+".", fv, form)...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			errs = append(errs, applyTables(name, fv, form)...)
		default:
			if err := setValue(name, fv, form); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

func applyStruct(prefix string, v reflect.Value, form url.Values) settings.Errors {
	var errs settings.Errors
	for i := range v.NumField() {
		if err := setValue(prefix+tomlName(v.Type().Field(i)), v.Field(i), form); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func applyTables(name string, v reflect.Value, form url.Values) settings.Errors {
	indexes := map[int]bool{}
	for k := range form {
		m := indexedKey.FindStringSubmatch(k)
		if m == nil || m[1] != name {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		indexes[n] = true
	}
	if len(indexes) == 0 {
		return nil
	}
	order := make([]int, 0, len(indexes))
	for n := range indexes {
		order = append(order, n)
	}
	sort.Ints(order)

	var errs settings.Errors
	out := reflect.MakeSlice(v.Type(), 0, len(order))
	for _, n := range order {
		elem := reflect.New(v.Type().Elem()).Elem()
		if n < v.Len() {
			elem.Set(v.Index(n))
		}
		errs = append(errs, applyStruct(fmt.Sprintf("%s[%d].", name, n), elem, form)...)
		if !elem.IsZero() {
			out = reflect.Append(out, elem)
		}
	}
	v.Set(out)
	return errs
}

// setValue parses the form value of key into v. A checkbox posts a hidden
// "false" before itself, so the last value wins and an unchecked box still
// counts as present.
func setValue(key string, v reflect.Value, form url.Values) *settings.FieldError {
	vals, ok := form[key]
	if !ok || len(vals) == 0 {
		return nil
	}
	raw := strings.TrimSpace(vals[len(vals)-1])
	bad := func(format string, args ...any) *settings.FieldError {
		return &settings.FieldError{Key: key, Message: fmt.Sprintf(format, args...)}
	}
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return bad("%q is not a duration: write it like 30s, 5m or 120h", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.Bool:
		v.SetBool(raw == "true" || raw == "on")
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return bad("%q is not a whole number", raw)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Slice:
		var list []string
		for _, line := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\n' || r == ',' }) {
			if line = strings.TrimSpace(line); line != "" {
				list = append(list, line)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		v.SetString(raw)
	}
	return nil
}

// errorMap indexes validation errors by key; errors of keys that no field
// shows are returned separately for the top of the page.
func errorMap(err error, shown func(key string) bool) (map[string]string, []string) {
	byKey := map[string]string{}
	var other []string
	var fes settings.Errors
	if !errors.As(err, &fes) {
		if err != nil {
			other = append(other, err.Error())
		}
		return byKey, other
	}
	for _, fe := range fes {
		if shown(fe.Key) {
			if byKey[fe.Key] != "" {
				byKey[fe.Key] += " "
			}
			byKey[fe.Key] += fe.Message
		} else {
			other = append(other, fe.Error())
		}
	}
	return byKey, other
}
