module waypost.test/gotemplate

go 1.19
