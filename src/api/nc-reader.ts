/** The run-file reader lives with the rest of the netCDF code: src/netcdf/reader.ts. */
export { Chunk, NcRunReader, type NcType, type NcVariable } from '../netcdf/reader.ts';
