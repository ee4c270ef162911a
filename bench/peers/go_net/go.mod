module ecopeer/gonet

go 1.19
