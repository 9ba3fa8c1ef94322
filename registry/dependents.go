package registry

// Dependent is a private package whose latest version depends on another
// (the packages database's dependents view). Restricted dependents are
// shown only to those who may read them.
type Dependent struct {
	Name       string `json:"name"`
	Restricted bool   `json:"restricted"`
}
