"""The `carbonscape` command line: a thin layer over the library's public API."""

from __future__ import annotations

import functools
import logging
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import carbonscape
import click
from carbonscape.cli.options import bench_scheduler_option, force_option, overwrite_option, progress_option, scheduler_option, study_out_option

log = logging.getLogger("carbonscape")

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT = 0, 1, 2

# `supply --out` and `generate` write into a folder in place: a folder of the user's own files is
# refused unless this is given.
write_into_option = click.option(
    "--overwrite", is_flag=True,
    help="Write into an output folder that holds files carbonscape did not write (replacing any of the same names).",
)


def _claim_folder(out: str, command: str, overwrite: bool) -> None:
    from carbonscape.study.outputs import stage_folder_problem

    problem = stage_folder_problem(out, command=command, overwrite=overwrite)
    if problem:
        raise carbonscape.InputError(problem)


def _mark_folder(out: str, command: str) -> None:
    from carbonscape.study.outputs import mark_stage_folder

    mark_stage_folder(out, command=command)


def _handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Errors become one clear paragraph and an exit code scripts can use (2 bad input, 1 failure)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().obj and ctx.find_root().obj.get("debug"))
        try:
            return func(*args, **kwargs)
        except carbonscape.InputError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted; no partial output was left behind.", err=True)
            ctx.exit(130)
        except Exception as exc:  # the last line of defence: one paragraph, not a traceback
            if debug:
                traceback.print_exc()
            kind = "" if isinstance(exc, carbonscape.CarbonscapeError) else f"{type(exc).__name__}: "
            click.echo(f"Error: {kind}{exc}\n(run again with --debug for the traceback)", err=True)
            ctx.exit(EXIT_FAILURE)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(carbonscape.__version__, "--version", prog_name="carbonscape")
@click.option("-v", "--verbose", count=True, help="More log messages (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Fewer log messages: warnings only (-qq errors only); results still go to stdout.")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int, debug: bool) -> None:
    """Carbon supply, demand and their balance per county, from land-use rasters.

    \b
    Start with the bundled Central Yunnan study:
        carbonscape demo --out demo-out
    or with your own data, step by step:
        carbonscape ingest landuse.tif --out landuse.zarr
        carbonscape zones counties.gpkg --like landuse.zarr --id-field name --out zones.zarr
        carbonscape supply --landuse landuse.zarr --zones zones.zarr --pools pools.csv --out results
        carbonscape demand results --counties counties.gpkg --id-field name --table population.csv --per-capita-t 4.1
        carbonscape zoning results && carbonscape maps results && carbonscape report results
    """
    level = max(logging.DEBUG, min(logging.INFO - 10 * verbose + 10 * quiet, logging.CRITICAL))
    # Our messages at the chosen level; other libraries' (dask, distributed, pyogrio) only when
    # they warn, or with -vv.
    logging.basicConfig(level=logging.WARNING if verbose < 2 else logging.DEBUG, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("carbonscape").setLevel(level)
    import distributed  # noqa: F401  (configures its loggers on import; ours must come after)

    for noisy in ("distributed", "pyogrio"):
        logging.getLogger(noisy).setLevel(logging.ERROR if verbose < 2 else logging.INFO)
    # Python warnings (ours and other libraries') become log lines: one line, no echoed source.
    logging.getLogger("py.warnings").setLevel(max(level, logging.WARNING))
    warnings.showwarning = functools.partial(_log_warning, where=verbose > 0)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    ctx.obj["quiet"] = quiet > 0


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None,
                 *, where: bool = False) -> None:
    """``warnings.showwarning`` for the CLI: the message through logging, its origin only with -v."""
    origin = f" ({category.__name__}, {Path(filename).name}:{lineno})" if where else ""
    logging.getLogger("py.warnings").warning("%s%s", message, origin)


def _progress(ctx: click.Context, progress: bool | None) -> bool:
    """``--progress/--no-progress`` with auto (None) meaning on; -q turns it off. The engine picks
    a bar (stderr is a terminal) or log lines (it is not)."""
    if ctx.find_root().obj.get("quiet"):
        return False
    return True if progress is None else progress


@cli.command()
@click.argument("landuse", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Zarr store to write.")
@click.option("--chunk", default=4096, show_default=True, help="Chunk edge in pixels.")
@force_option
@scheduler_option
@progress_option
@click.pass_context
@_handle_errors
def ingest(ctx: click.Context, landuse: tuple[str, ...], out: str, chunk: int, force: bool, scheduler: str | None, progress: bool | None) -> None:
    """Convert land-use GeoTIFF(s) to a chunked Zarr store.

    Several files are mosaicked when they are tiles of one grid. Re-running on the same input is
    a no-op unless --force.

    \b
    Example:
        carbonscape ingest landuse_2020.tif --out landuse.zarr --chunk 4096
    """
    path = carbonscape.ingest(list(landuse), out, chunk=chunk, force=force, scheduler=scheduler, progress=_progress(ctx, progress))
    click.echo(str(path))


@cli.command()
@click.argument("counties", type=click.Path(dir_okay=False))
@click.option("--like", required=True, type=click.Path(file_okay=False), help="Land-use store whose grid to match.")
@click.option("--id-field", required=True, help="Field naming each county (unique).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Zone store to write.")
@click.option("--layer", default=None, help="Layer of the vector file, when it has several.")
@click.option("--encoding", default=None, help="Code page of the attribute text (e.g. GBK) when the file does not say; default: detected.")
@click.option("--coverage", type=click.Choice(["centre", "fraction"]), default="centre", show_default=True,
              help="centre: a pixel belongs to the county holding its centre (ArcGIS/InVEST). fraction: boundary pixels are "
                   "shared among counties by their exact covered fraction.")
@force_option
@scheduler_option
@progress_option
@click.pass_context
@_handle_errors
def zones(ctx: click.Context, counties: str, like: str, id_field: str, out: str, layer: str | None, encoding: str | None, coverage: str,
          force: bool,
          scheduler: str | None, progress: bool | None) -> None:
    """Rasterize county polygons to zone ids on exactly the land-use grid.

    \b
    Example:
        carbonscape zones counties.gpkg --like landuse.zarr --id-field county --out zones.zarr
    """
    path = carbonscape.rasterize_zones(
        counties, like=like, id_field=id_field, out=out, layer=layer, encoding=encoding, coverage=coverage, force=force,
        scheduler=scheduler, progress=_progress(ctx, progress),
    )
    click.echo(str(path))


@cli.command()
@click.option("--landuse", required=True, type=click.Path(file_okay=False), help="Land-use store (from ingest).")
@click.option("--zones", "zones_store", type=click.Path(file_okay=False), help="Zone store (from zones); or --grid.")
@click.option("--grid", "grid_size", type=float, default=None,
              help="Instead of counties: square cells of SIZE CRS units (a multiple of the pixel size), from the top-left corner.")
@click.option("--pools", required=True, type=click.Path(dir_okay=False), help="InVEST carbon pools table (CSV).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the tables.")
@click.option("--pixel-maps", is_flag=True, help="Also write carbon per pixel (t/ha) as Zarr and COG.")
@click.option("--min-coverage", type=float, default=None,
              help="Refuse counties the raster covers less than this share of (default 0.9); lower it to accept them, flagged.")
@click.option("--population", "population_raster", type=click.Path(dir_okay=False), default=None,
              help="People per pixel GeoTIFF: people per county in continuous_by_county.csv (with --grid: per cell in "
                   "supply_by_cell.csv and continuous_by_cell.csv), same pass.")
@click.option("--npp", "npp_raster", type=click.Path(dir_okay=False), default=None,
              help="NPP GeoTIFF: yearly sequestration per county in sequestration_by_county.csv.")
@click.option("--npp-units", type=click.Choice(["g C m-2 yr-1", "kg C m-2 yr-1", "t C ha-1 yr-1"]), default="g C m-2 yr-1",
              show_default=True, help="Units of the NPP raster.")
@click.option("--factor", "factor_raster", type=click.Path(dir_okay=False), default=None,
              help="Correction factor GeoTIFF multiplying every pool's density pixel by pixel.")
@click.option("--resampling", type=click.Choice(["none", "nearest"]), default="none", show_default=True,
              help="nearest: also resample rasters in another CRS onto the land-use grid (same CRS: always nearest).")
@write_into_option
@scheduler_option
@progress_option
@click.pass_context
@_handle_errors
def supply(ctx: click.Context, landuse: str, zones_store: str | None, grid_size: float | None, pools: str, out: str, pixel_maps: bool,
           min_coverage: float | None, population_raster: str | None, npp_raster: str | None, npp_units: str, factor_raster: str | None,
           resampling: str, overwrite: bool, scheduler: str | None, progress: bool | None) -> None:
    """Carbon supply per county (or grid cell), per class, per county and class, and per pool.

    \b
    Example:
        carbonscape supply --landuse landuse.zarr --zones zones.zarr --pools pools.csv --out results
        carbonscape supply --landuse landuse.zarr --grid 1000 --pools pools.csv --out cells
    """
    if (zones_store is None) == (grid_size is None):
        raise click.UsageError("give either --zones (a county store) or --grid SIZE (square cells), not both or neither")
    if population_raster or npp_raster or factor_raster:  # the rasters' check of `check` and `run`, before any compute
        from carbonscape.continuous import check_rasters

        check_rasters({"--population": (population_raster, "count"), "--npp": (npp_raster, "density"),
                       "--factor": (factor_raster, "density")}, like=landuse, zones=zones_store, resampling=resampling)
    _claim_folder(out, "supply", overwrite)
    if grid_size is not None:
        if pixel_maps:
            raise click.UsageError("--pixel-maps goes with --zones; per-cell GeoTIFFs are written with --grid")
        from carbonscape.cells import supply_cells, supply_cells_with_rasters

        if factor_raster:
            raise click.UsageError("--factor corrects the counties' supply (with --zones); with --grid give --population and/or --npp")
        if population_raster or npp_raster:
            cells = supply_cells_with_rasters(landuse, pools, size=grid_size, out=out, population=population_raster, npp=npp_raster,
                                              npp_units=npp_units, resampling=resampling, scheduler=scheduler,
                                              progress=_progress(ctx, progress))
        else:
            cells = supply_cells(landuse, pools, size=grid_size, out=out, scheduler=scheduler, progress=_progress(ctx, progress))
        _mark_folder(out, "supply")
        s = cells.summary
        click.echo(f"total supply {s['total_supply_t']:,.0f} t C in {s['cells_with_land']:,} cells of {s['cell_size']:g} {s.get('cell_unit', '')} "
                   f"({s['nodata_pixels']:,} nodata pixels) in {s['seconds']:.1f} s")
        for name, path in cells.files.items():
            click.echo(f"  {name}: {path}")
        return
    assert zones_store is not None
    if population_raster or npp_raster or factor_raster:
        from carbonscape.continuous import supply_with_rasters

        both = supply_with_rasters(landuse, zones_store, pools, out=out, population=population_raster, npp=npp_raster, npp_units=npp_units,
                                   factor=factor_raster, resampling=resampling, min_coverage=min_coverage, scheduler=scheduler,
                                   pixel_maps=pixel_maps,
                                   progress=_progress(ctx, progress))
        _mark_folder(out, "supply")
        s = both.supply.summary
        click.echo(f"total supply {s['total_supply_t']:,.0f} t C in {len(both.supply.by_county)} counties"
                   + (f" (uncorrected {s['total_supply_t_uncorrected']:,.0f})" if "total_supply_t_uncorrected" in s else ""))
        if "population" in both.values:
            click.echo(f"population {both.values['population']['sum_va'].sum():,.0f} people")
        if both.sequestration is not None:
            click.echo(f"sequestration {both.sequestration['sequestration_t_c'].sum():,.1f} t C/yr")
        for name, path in both.files.items():
            click.echo(f"  {name}: {path}")
        return
    result = carbonscape.supply(landuse, zones_store, pools, out=out, scheduler=scheduler, pixel_maps=pixel_maps, progress=_progress(ctx, progress),
                                min_coverage=min_coverage)
    _mark_folder(out, "supply")
    # Results are output, not logging: -q hides progress and log lines only.
    s = result.summary
    click.echo(f"total supply {s['total_supply_t']:,.0f} t C in {len(result.by_county)} counties "
               f"({s['pixels_in_counties']:,} pixels, {s['nodata_pixels_in_counties']:,} nodata) in {s['seconds']:.1f} s")
    for name, path in result.files.items():
        click.echo(f"  {name}: {path}")


@cli.command(name="demand")
@click.argument("results", type=click.Path(file_okay=False, exists=True))
@click.option("--counties", required=True, type=click.Path(dir_okay=False, exists=True), help="County polygons (as for `zones`).")
@click.option("--id-field", required=True, help="Field naming each county (as for `zones`).")
@click.option("--table", required=True, type=click.Path(dir_okay=False, exists=True), help="County table with populations (CSV or XLSX).")
@click.option("--key", default=None, help="Column of the table matching --id-field (default: the same name).")
@click.option("--population", default="population", show_default=True, help="Population column of the table.")
@click.option("--per-capita-t", type=float, default=None, help="Emission per person, t CO2.")
@click.option("--total-emissions-t", type=float, default=None, help="The region's total CO2 emissions, t (with --total-population).")
@click.option("--total-population", type=float, default=None, help="The region's population (per capita = total emissions / this).")
@click.option("--emissions-column", default=None, help="Or a column of each county's own emissions, t CO2.")
@click.option("--layer", default=None, help="Layer of the polygon file, when it has several.")
@click.option("--sheet", default=None, help="Sheet of an XLSX table.")
@click.pass_context
@_handle_errors
def demand_command(ctx: click.Context, results: str, counties: str, id_field: str, table: str, key: str | None, population: str,
                   per_capita_t: float | None, total_emissions_t: float | None, total_population: float | None, emissions_column: str | None,
                   layer: str | None, sheet: str | None) -> None:
    """Carbon demand per county (t CO2/km²) beside supply's tables, in the same folder.

    Demand = per-capita emission × population density (or each county's emissions / its area).

    \b
    Example:
        carbonscape demand results --counties counties.gpkg --id-field county --table population.csv --per-capita-t 4.1
    """
    result = carbonscape.demand_stage(results, counties=counties, id_field=id_field, table=table, key=key, population=population,
                                      per_capita_t=per_capita_t, total_emissions_t=total_emissions_t, total_population=total_population,
                                      emissions_column=emissions_column, layer=layer, sheet=sheet)
    totals = carbonscape.demand_totals(result.demand)
    click.echo(f"demand in {len(result.demand):,} counties: regional density {totals['regional_density_t_per_km2']:,.1f} t CO₂/km²")
    for name in ("demand_by_county", "demand_totals"):
        click.echo(f"  {name}: {result.files[name]}")


@cli.command(name="zoning")
@click.argument("results", type=click.Path(file_okay=False, exists=True))
@click.option("--units", "ratio_units", type=click.Choice(["co2_per_c", "carbon", "paper"]), default="co2_per_c", show_default=True,
              help="co2_per_c: t CO2 demand over t C supply, compared directly; carbon: demand × 12/44.")
@click.option("--method", type=click.Choice(["jenks", "quantile", "equal", "manual"]), default="jenks", show_default=True)
@click.option("--k", default=7, show_default=True, help="Number of ratio classes.")
@click.option("--breaks", default=None, help="Manual class edges, k + 1 numbers separated by commas.")
@click.option("--weights", type=click.Choice(["area"]), default=None, help="Weigh each county by its area.")
@click.option("--scheme", default="four_zones", show_default=True, help="Zone scheme: four_zones (the paper's 7 classes → 4 zones), classes, none.")
@click.option("--name", default=None, help="The study's name on the maps and report (default: the folder's name).")
@click.option("--year", type=int, default=None, help="The study's year.")
@click.option("--source", default=None, help="The data sources the maps credit (default: the input files' names).")
@click.option("--supply-weight", type=float, default=0.5, show_default=True, help="α of the coupling coordination degree ([matching]).")
@click.option("--demand-weight", type=float, default=0.5, show_default=True, help="β of the coupling coordination degree ([matching]).")
@click.pass_context
@_handle_errors
def zoning_command(ctx: click.Context, results: str, ratio_units: str, method: str, k: int, breaks: str | None, weights: str | None,
                   scheme: str, name: str | None, year: int | None, source: str | None, supply_weight: float, demand_weight: float) -> None:
    """Supply–demand ratio and functional zones of supply's and demand's folder; writes
    ratio_zones.csv, counties.gpkg and run.json, ready for `maps` and `report`.

    \b
    Example:
        carbonscape zoning results --method jenks --k 7 --name "My region" --year 2020
    """
    edges = _breaks(breaks)
    result = carbonscape.zoning_stage(results, ratio_units=ratio_units, method=method, k=k, breaks=edges, weights=weights, scheme=scheme,
                                      name=name, year=year, source=source, supply_weight=supply_weight, demand_weight=demand_weight)
    _print_study_summary(result)


@cli.command(name="statistics")
@click.argument("results", type=click.Path(file_okay=False, exists=True))
@click.option("--weights", default="queen", show_default=True, help='Spatial weights, row-standardised: "queen", "rook" or "knn:<k>".')
@click.option("--permutations", default=999, show_default=True, help="Permutations for the pseudo p-values.")
@click.option("--seed", default=12345, show_default=True, help="Seed of the permutations.")
@click.option("--alpha", default=0.05, show_default=True, help="Significance level of LISA clusters and hot spots.")
@click.option("--pools", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Pools table with spreads (c_above_sd ... or c_above_min/_max ...): also the Monte Carlo of the densities.")
@click.option("--draws", default=1000, show_default=True, help="Monte Carlo draws (with --pools).")
@click.option("--draws-seed", default=12345, show_default=True, help="Seed of the Monte Carlo draws (with --pools).")
@click.option("--maps/--no-maps", default=True, help="Draw the maps of the statistics.")
@click.pass_context
@_handle_errors
def statistics_command(ctx: click.Context, results: str, weights: str, permutations: int, seed: int, alpha: float, pools: str | None,
                       draws: int, draws_seed: int, maps: bool) -> None:
    """Moran's I, LISA clusters, Getis–Ord Gi* hot spots and (with --pools) the density uncertainty
    of the counties of the zoning stage's folder; writes moran.csv, lisa.csv, hotspots.csv,
    uncertainty_by_county.csv and their maps, as `run` does.

    \b
    Example:
        carbonscape statistics results --permutations 999 --pools pools_with_sd.csv --draws 1000
    """
    result = carbonscape.statistics_stage(results, weights=weights, permutations=permutations, seed=seed, alpha=alpha, pools=pools,
                                          draws=draws, draws_seed=draws_seed, maps=maps)
    _print_study_summary(result)


@cli.command(name="cells")
@click.argument("results", type=click.Path(file_okay=False, exists=True))
@click.option("--units", "ratio_units", type=click.Choice(["co2_per_c", "carbon", "paper"]), default=None,
              help="Ratio units (default: as the run).")
@click.option("--method", type=click.Choice(["jenks", "quantile", "equal", "manual"]), default=None, help="Zoning method (default: as the run).")
@click.option("--k", type=int, default=None, help="Number of ratio classes (default: as the run).")
@click.option("--breaks", default=None, help="Manual class edges, k + 1 numbers separated by commas (manual zoning; k from them).")
@click.option("--scheme", default=None, help="Zone scheme (default: as the run; four_zones needs k = 7, classes takes any k).")
@click.option("--supply-weight", type=float, default=None, help="α of the coupling coordination degree (default 0.5).")
@click.option("--demand-weight", type=float, default=None, help="β of the coupling coordination degree (default 0.5).")
@click.option("--statistics/--no-statistics", default=None, help="Moran's I, LISA and Gi* of the cells (default: with 5+ cells).")
@click.option("--weights", "spatial_weights", default=None, help='Spatial weights: "queen", "rook" or "knn:<k>" (default: as the run).')
@click.option("--permutations", type=int, default=None, help="Permutations for the pseudo p-values (default: as the run).")
@click.option("--seed", type=int, default=None, help="Seed of the permutations (default: as the run).")
@click.option("--alpha", type=float, default=None, help="Significance level (default: as the run).")
@click.option("--pools", default=None, type=click.Path(dir_okay=False, exists=True),
              help="Pools table with spreads: also the Monte Carlo of the densities per cell.")
@click.option("--draws", type=int, default=None, help="Monte Carlo draws (with --pools; default: as the run, else 1000).")
@click.option("--draws-seed", type=int, default=None, help="Seed of the Monte Carlo draws (with --pools; default: as the run).")
@click.option("--maps/--no-maps", default=True, help="Draw the cell maps.")
@click.pass_context
@_handle_errors
def cells_command(ctx: click.Context, results: str, ratio_units: str | None, method: str | None, k: int | None, breaks: str | None,
                  scheme: str | None, supply_weight: float | None, demand_weight: float | None, statistics: bool | None,
                  spatial_weights: str | None, permutations: int | None, seed: int | None, alpha: float | None, pools: str | None,
                  draws: int | None, draws_seed: int | None, maps: bool) -> None:
    """The grid-cell analysis of a results folder again (a study run with [units] grid): ratio,
    zones and matching per cell, Moran's I, LISA, Gi* and (with --pools) the density uncertainty;
    rewrites cells/ and run.json's cells. With no option it reproduces the run's cell tables.

    \b
    Example:
        carbonscape cells results --k 5 --scheme classes --permutations 999 --pools pools_with_sd.csv
    """
    edges = _breaks(breaks)
    result = carbonscape.cells_stage(results, ratio_units=ratio_units, method=method, k=k, breaks=edges, scheme=scheme,
                                     supply_weight=supply_weight, demand_weight=demand_weight, statistics=statistics,
                                     spatial_weights=spatial_weights, permutations=permutations, seed=seed, alpha=alpha, pools=pools,
                                     draws=draws, draws_seed=draws_seed, maps=maps)
    _print_cells_summary(result)


def _print_cells_summary(result: Any) -> None:
    """What the `cells` stage made of the cells (not the counties' summary, which it left as it was)."""
    cells = result.cells
    info = cells.info
    zoning = cells.zoning
    click.echo(f"cells    {info['cells']:,} cells of {info['size']:g} {info.get('unit', '')}".rstrip()
               + f", supply {info['supply_t']:,.0f} t C; {zoning.get('method')} k = {zoning.get('k')}, scheme {zoning.get('scheme')}")
    zones = cells.table["zone_en"].value_counts() if "zone_en" in cells.table else None
    if zones is not None and len(zones):
        click.echo("zones    " + "; ".join(f"{zone}: {n:,}" for zone, n in zones.items()))
    if cells.statistics is not None:
        moran = cells.statistics.moran.set_index("variable")
        click.echo("moran    " + "; ".join(f"{name} I = {row['I']:.3f} (p = {row['p_sim']:.3g})" for name, row in moran.iterrows()))
    elif info.get("statistics_left_out"):
        click.echo(f"cells    {info['statistics_left_out']}")
    if cells.uncertainty is not None:
        uncertain = cells.uncertainty.info
        click.echo(f"density uncertainty  {uncertain['draws']:,} draws ({uncertain['distribution']}), seed {uncertain['seed']}")
    click.echo(f"outputs  {result.out / 'cells'}")


@cli.command()
@click.option("--from", "landuse_from", required=True, type=click.Path(file_okay=False), help="Land-use store of the earlier (base) map.")
@click.option("--to", "landuse_to", required=True, type=click.Path(file_okay=False), help="Land-use store of the later or scenario map.")
@click.option("--zones", "zones_store", required=True, type=click.Path(file_okay=False), help="County store (from zones).")
@click.option("--pools", required=True, type=click.Path(dir_okay=False), help="InVEST carbon pools table (CSV) of the --from map.")
@click.option("--pools-to", default=None, type=click.Path(dir_okay=False), help="Pools table of the --to map, when densities change (default: --pools).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the tables.")
@click.option("--years", nargs=2, type=int, default=None, metavar="Y0 Y1", help="Years of the two maps (valuation, dynamic degrees).")
@click.option("--price", type=float, default=None, help="Price per t C (currency); turns on InVEST's valuation (needs --years).")
@click.option("--discount-rate", type=float, default=None, help="Annual market discount rate, % (with --price).")
@click.option("--rate-change", type=float, default=None, help="Annual change in the price of carbon, % (with --price; default 0).")
@click.option("--pixel-maps", is_flag=True, help="Also write c_change.tif (t C/ha) and, when valued, npv.tif (currency/ha), as InVEST does.")
@write_into_option
@scheduler_option
@progress_option
@click.pass_context
@_handle_errors
def change(ctx: click.Context, landuse_from: str, landuse_to: str, zones_store: str, pools: str, pools_to: str | None, out: str,
           years: tuple[int, int] | None, price: float | None, discount_rate: float | None, rate_change: float | None,
           pixel_maps: bool, overwrite: bool, scheduler: str | None, progress: bool | None) -> None:
    """Carbon change between two land-use maps: per county, per transition, valued as InVEST does.

    Writes change_by_county.csv, transitions_by_county.csv, transitions.csv (the region),
    transfer_matrix_km2.csv, land_use_dynamic_degree.csv, change_summary.json and transitions_sankey.png,
    and prints the transfer matrix (km², with totals; left out with -q).

    \b
    Example:
        carbonscape change --from lu2000.zarr --to lu2020.zarr --zones zones.zarr --pools pools.csv \\
            --out change --years 2000 2020 --price 50 --discount-rate 7 --rate-change 0
    """
    if price is None and (discount_rate is not None or rate_change is not None):
        raise carbonscape.InputError("--discount-rate and --rate-change value the change: give --price too (currency per t C)")
    valuation = None
    if price is not None:
        if discount_rate is None:
            raise carbonscape.InputError("--price needs --discount-rate (annual market discount rate, %, e.g. 7)")
        valuation = carbonscape.Valuation(price=price, discount_rate=discount_rate, rate_change=rate_change or 0.0)
    _claim_folder(out, "change", overwrite)
    result = carbonscape.change(
        landuse_from, landuse_to, zones_store, pools, pools_to=pools_to, years=years or None, valuation=valuation, out=out,
        pixel_maps=pixel_maps, scheduler=scheduler, progress=_progress(ctx, progress),
        labels=(str(years[0]), str(years[1])) if years else (Path(landuse_from).stem, Path(landuse_to).stem),
    )
    from carbonscape.change import transfer_table
    from carbonscape.change_figures import draw_transitions

    result.files["transitions_sankey"] = draw_transitions(result, Path(out).absolute() / "transitions_sankey.png")
    _mark_folder(out, "change")
    s = result.summary
    click.echo(f"supply {s['supply_from_t']:,.0f} t C → {s['supply_to_t']:,.0f} t C; change {s['change_t']:+,.0f} t C "
               f"over pixels with a class in both maps ({s['changed_pixels']:,} pixels changed class)")
    if "valuation" in s:
        click.echo(f"net present value {s['valuation']['npv']:+,.2f} (valuation constant {s['valuation']['valuation_constant_per_t_c']:.6g} per t C)")
    if s.get("comprehensive_dynamic_degree_pct_per_year") is not None:
        click.echo(f"comprehensive land-use dynamic degree {s['comprehensive_dynamic_degree_pct_per_year']:.4f} % per year")
    if s["nodata_from_only_pixels"] or s["nodata_to_only_pixels"]:
        click.echo(f"nodata in one map only: {s['nodata_from_only_pixels']:,} pixels (first), {s['nodata_to_only_pixels']:,} (second)")
    top = result.transitions[result.transitions["from_code"] != result.transitions["to_code"]]
    top = top.reindex(top["area_km2"].sort_values(ascending=False).index).head(5)
    for row in top.itertuples():
        click.echo(f"  {row.from_name} → {row.to_name}: {row.area_km2:,.3f} km², {row.carbon_change_t:+,.0f} t C")
    if not ctx.find_root().obj.get("quiet"):
        for line in transfer_table(result, *result.summary["maps"].values()):
            click.echo(line)
    for name, path in result.files.items():
        click.echo(f"  {name}: {path}")


@cli.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--size", default="2000x2000", show_default=True, help="ROWSxCOLS of the raster.")
@click.option("--pixel-size", default=30.0, show_default=True, help="Pixel edge in metres.")
@click.option("--counties", "n_counties", default=50, show_default=True, help="Number of Voronoi counties.")
@click.option("--seed", default=0, show_default=True)
@write_into_option
@click.pass_context
@_handle_errors
def generate(ctx: click.Context, out_dir: str, size: str, pixel_size: float, n_counties: int, seed: int, overwrite: bool) -> None:
    """Generate a synthetic region (land use, counties, pools) to try or benchmark carbonscape.

    \b
    Example:
        carbonscape generate region --size 10000x10000
    """
    try:
        rows, cols = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise carbonscape.InputError(f"--size {size!r} is not ROWSxCOLS, e.g. 2000x3000") from None
    if rows < 1 or cols < 1:
        raise carbonscape.InputError(f"--size {size!r}: a raster needs at least one row and one column, e.g. 2000x3000")
    if not pixel_size > 0:
        raise carbonscape.InputError(f"--pixel-size {pixel_size:g}: a pixel edge is a positive length in metres, e.g. 30")
    if n_counties < 1:
        raise carbonscape.InputError(f"--counties {n_counties}: a region needs at least one county, e.g. 50")
    _claim_folder(out_dir, "generate", overwrite)
    region = carbonscape.make_region(out_dir, shape=(rows, cols), pixel_size=pixel_size, n_counties=n_counties, seed=seed)
    _mark_folder(out_dir, "generate")
    for label, path in (("landuse", region.landuse), ("counties", region.counties), ("pools", region.pools)):
        click.echo(f"{label}: {path}")


def _breaks(breaks: str | None) -> list[float] | None:
    """``--breaks`` as numbers (None when not given)."""
    if breaks is None:
        return None
    try:
        return [float(v) for v in breaks.split(",") if v.strip()]
    except ValueError:
        raise carbonscape.InputError(f"--breaks {breaks!r} is not numbers separated by commas, e.g. 0.005,0.01,0.02") from None


def _print_study_summary(result: Any) -> None:
    totals = result.totals
    click.echo(f"supply   {totals['supply_t']:,.0f} t C ({totals['supply_t'] / 1e6:,.2f} × 10⁶ t) in {totals['counties']} counties")
    click.echo(f"demand   {totals['sum_of_county_densities_t_per_km2']:,.2f} t CO₂/km² summed over the county densities (a sum of densities, "
               f"not a density); regional density {totals['regional_density_t_per_km2']:,.2f} t CO₂/km²")
    zones = carbonscape.zone_groups(result.ratio_zones)
    if zones:
        click.echo("zones    " + "; ".join(f"{group.zone}: {len(group.counties)}" for group in zones))
    if getattr(result, "statistics", None) is not None:
        moran = result.statistics.moran.set_index("variable")
        click.echo("moran    " + "; ".join(f"{name} I = {row['I']:.3f} (p = {row['p_sim']:.3g})" for name, row in moran.iterrows()))
    if getattr(result, "uncertainty", None) is not None:
        info = result.uncertainty.info
        click.echo(f"density uncertainty  {info['draws']:,} draws ({info['distribution']}), seed {info['seed']}")
    cells = getattr(result, "cells", None)
    if cells is not None:
        info = cells.info
        edge = info.get("cells_on_region_edge")
        unit = f" {info['unit']}" if info.get("unit") else ""
        click.echo(f"cells    {info['cells']:,} cells of {info['size']:g}{unit} in the counties"
                   + (f" ({edge:,} on the region's edge, counted only inside)" if edge else "")
                   + f", supply {info['supply_t']:,.0f} t C; in {result.out / 'cells'}")
        if info.get("statistics_left_out"):
            click.echo(f"cells    {info['statistics_left_out']}")
    click.echo(f"outputs  {result.out}")
    for name in ("report", "ratio_zones", "counties", "run", "moran", "lisa", "hotspots", "uncertainty"):
        if name in result.files:
            click.echo(f"  {name}: {result.files[name]}")


@cli.command(name="run")
@click.argument("study", type=click.Path(dir_okay=False))
@study_out_option
@click.option("--maps/--no-maps", default=None, help="Draw the maps (default: as the study file says).")
@click.option("--report/--no-report", default=None, help="Write report.html (default: as the study file says).")
@click.option("--statistics/--no-statistics", default=None,
              help="Moran's I, LISA and Gi* ([statistics] enabled; default: as the study file says, else with 5+ counties).")
@click.option("--draws", type=int, default=None, help="Monte Carlo draws of the densities ([uncertainty] draws).")
@click.option("--seed", type=int, default=None, help="Seed of the Monte Carlo draws ([uncertainty] seed).")
@click.option("--coverage", type=click.Choice(["centre", "fraction"]), default=None,
              help="How pixels are given to counties ([counties] coverage): centre (pixel centre) or fraction (exact partial pixels).")
@click.option("--min-coverage", type=float, default=None,
              help="Refuse counties the land use covers less than this share of ([counties] min_coverage, default 0.9); "
                   "lower it to accept them, their supply density over the covered area, flagged low_coverage.")
@click.option("--population", "population_raster", type=click.Path(dir_okay=False), default=None,
              help="People per pixel GeoTIFF (WorldPop/LandScan): population per county from it ([continuous] population).")
@click.option("--npp", "npp_raster", type=click.Path(dir_okay=False), default=None,
              help="NPP GeoTIFF: yearly sequestration per county ([continuous] npp, units [continuous] npp_units).")
@overwrite_option
@scheduler_option
@progress_option
@click.pass_context
@_handle_errors
def run_command(ctx: click.Context, study: str, out: str | None, maps: bool | None, report: bool | None, statistics: bool | None,
                draws: int | None, seed: int | None, coverage: str | None, min_coverage: float | None, population_raster: str | None,
                npp_raster: str | None, overwrite: bool, scheduler: str | None, progress: bool | None) -> None:
    """Run a whole study from its TOML file: supply, demand, ratio, zones, maps and report.

    Stores that are already up to date are reused. The results appear all at once: a failed or
    interrupted run leaves the output folder as it was.

    \b
    Example:
        carbonscape run study.toml --out results
    """
    flags = {"statistics": {"enabled": statistics}, "uncertainty": {"draws": draws, "seed": seed}}
    flags["counties"] = {"coverage": coverage, "min_coverage": min_coverage}
    flags["continuous"] = _continuous_flags(population_raster, npp_raster)
    result = carbonscape.run_study(study, out=out, scheduler=scheduler, progress=_progress(ctx, progress), maps=maps, report=report,
                                   overwrite=overwrite, settings=flags)
    _print_study_summary(result)


def _continuous_flags(population_raster: str | None, npp_raster: str | None) -> dict[str, str | None]:
    """``--population``/``--npp`` as [continuous] settings: a local path made absolute, a URL as given."""
    from carbonscape import remote

    return {key: value and str(remote.location(value)) for key, value in (("population", population_raster), ("npp", npp_raster))}


@cli.command()
@click.argument("study", type=click.Path(dir_okay=False))
@click.option("--coverage", type=click.Choice(["centre", "fraction"]), default=None,
              help="Check as `run --coverage` would run it ([counties] coverage).")
@click.option("--min-coverage", type=float, default=None, help="Check as `run --min-coverage` would run it ([counties] min_coverage).")
@click.option("--population", "population_raster", type=click.Path(dir_okay=False), default=None,
              help="Check as `run --population` would run it: the people-per-pixel raster's coverage, CRS, nodata and values.")
@click.option("--npp", "npp_raster", type=click.Path(dir_okay=False), default=None,
              help="Check as `run --npp` would run it ([continuous] npp).")
@study_out_option
@click.pass_context
@_handle_errors
def check(ctx: click.Context, study: str, coverage: str | None, min_coverage: float | None, population_raster: str | None = None,
          npp_raster: str | None = None, out: str | None = None) -> None:
    """Validate every input of a study without computing; list all problems at once.

    On success it prints what it checked: the counties, the CRS and the area rule, the grid and
    pixel size, the land-use codes with their pixel counts, the pixels per county.

    With ``--out DIR`` the results folder checked (and whose up-to-date land-use store is read)
    is DIR, as `run --out DIR` would write: a second study file in the same folder checks against
    its own results folder, not the first study's.

    \b
    Example:
        carbonscape check study.toml
        carbonscape check study_b.toml --out results_b
    """
    from carbonscape.study import check_report

    target: Any = study
    if coverage is not None or min_coverage is not None or population_raster is not None or npp_raster is not None:
        from carbonscape.study.pipeline import with_settings

        target = with_settings(study, {"counties": {"coverage": coverage, "min_coverage": min_coverage},
                                       "continuous": _continuous_flags(population_raster, npp_raster)})
    problems, checked = check_report(target, out=out)
    if problems:
        raise carbonscape.StudyError(problems, path=study)
    click.echo(f"{study}: all inputs look right")
    for line in checked:
        click.echo(f"  {line}")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False), default="study.toml")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
@_handle_errors
def init(ctx: click.Context, path: str, force: bool) -> None:
    """Write a commented study.toml template to start a new study.

    \b
    Example:
        carbonscape init my-study/study.toml
    """
    written = carbonscape.write_study_template(path, force=force)
    click.echo(f"wrote {written}; fill in the paths, then `carbonscape check {written}`")


@cli.command(name="settings")
@click.pass_context
@_handle_errors
def settings_command(ctx: click.Context) -> None:
    """Print every setting a study file takes (Markdown): kind, allowed values, default, meaning.

    \b
    Example:
        carbonscape settings > SETTINGS.md
    """
    from carbonscape.study.settings import reference

    click.echo(reference())


@cli.command()
@click.option("--out", "-o", type=click.Path(file_okay=False), default="carbonscape-demo", show_default=True, help="Output folder.")
@click.option("--resolution", default=100.0, show_default=True, help="Pixel size in metres of the synthetic land use.")
@click.option("--maps/--no-maps", default=True, help="Draw the maps.")
@click.option("--report/--no-report", default=True, help="Write report.html.")
@overwrite_option
@scheduler_option
@progress_option
@click.pass_context
@_handle_errors
def demo(ctx: click.Context, out: str, resolution: float, maps: bool, report: bool, overwrite: bool, scheduler: str | None,
         progress: bool | None) -> None:
    """Run the bundled Central Yunnan 2020 study (49 counties) and compare it with the paper.

    The land use is SYNTHETIC, generated inside the real county boundaries so that its supply
    matches the paper's Tables 1 and 2; everything else is the real method.

    \b
    Example:
        carbonscape demo --out demo-out
    """
    result, comparison = carbonscape.run_demo(out, resolution_m=resolution, scheduler=scheduler, progress=_progress(ctx, progress), maps=maps,
                                              report=report, overwrite=overwrite)
    _print_study_summary(result)
    click.echo("")
    click.echo(comparison)
    _print_changes(result)


def _print_changes(result: Any) -> None:
    """The changes between a study's maps ([landuse.maps]): totals, value and the largest transitions."""
    found = getattr(result, "landuse_maps", None)
    if found is None:
        return
    for (a, b), found_change in found.changes.items():
        s = found_change.summary
        click.echo("")
        click.echo(f"Change {a} → {b}: supply {s['supply_from_t']:,.0f} → {s['supply_to_t']:,.0f} t C, change {s['change_t']:+,.0f} t C "
                   f"({s['changed_pixels']:,} pixels changed class)")
        if "valuation" in s:
            v = s["valuation"]
            click.echo(f"  net present value {v['npv']:+,.0f} at {v['price_per_t_c']:g} per t C, {v['discount_rate_pct']:g} % discount, "
                       f"{v['rate_change_pct']:g} % price change")
        if s.get("comprehensive_dynamic_degree_pct_per_year") is not None:
            click.echo(f"  comprehensive land-use dynamic degree {s['comprehensive_dynamic_degree_pct_per_year']:.3f} % per year")
        moves = found_change.transitions[found_change.transitions["from_code"] != found_change.transitions["to_code"]]
        click.echo("  largest transitions (transfer matrix: changes/…/transfer_matrix_km2.csv):")
        for row in moves.sort_values("area_km2", ascending=False).head(6).itertuples():
            click.echo(f"    {row.from_name:>14} → {row.to_name:<14} {row.area_km2:10,.1f} km²  {row.carbon_change_t:+14,.0f} t C")
        if not click.get_current_context().find_root().obj.get("quiet"):
            from carbonscape.change import transfer_table

            for line in transfer_table(found_change, a, b):
                click.echo(line)
        sankey = found_change.files.get("transitions_sankey")
        if sankey is not None:
            click.echo(f"  drawn: {Path(sankey).name}" + (", carbon_change_by_county.png" if "carbon_change_by_county" in found_change.files else ""))


@cli.command(name="maps")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg", "pdf"]), default=("png",), show_default=True, help="Image formats (repeat for several).")
@click.pass_context
@_handle_errors
def maps_command(ctx: click.Context, run_dir: str, formats: tuple[str, ...]) -> None:
    """Draw every map of a results folder again (from `run`, `demo`, or the stage commands): Figs. 1–5,
    the matching, statistics and zone-stability maps, the cell maps and the land-use change figures
    the folder's tables give.

    Maps of earlier draws in other formats are removed, so maps/ and the report show this draw.

    \b
    Example:
        carbonscape maps results --format png --format pdf
    """
    result = carbonscape.read_outputs(run_dir)
    for path in carbonscape.redraw_maps(result, formats=formats):
        click.echo(str(path))
    # The report embeds the maps: one left from an earlier draw would show other maps (or none).
    if (Path(run_dir) / "report.html").is_file():
        page = carbonscape.write_report(result)
        log.info("report.html rewritten with these maps")
        click.echo(str(page))


@cli.command(name="report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.pass_context
@_handle_errors
def report_command(ctx: click.Context, run_dir: str) -> None:
    """Write report.html of a results folder (one self-contained file; from `run`, `demo`, or the
    `zoning` stage, after `maps`).

    \b
    Example:
        carbonscape report results
    """
    click.echo(str(carbonscape.write_report(carbonscape.read_outputs(run_dir))))


@cli.command(name="bench")
@click.option("--size", "sizes", multiple=True, type=click.IntRange(min=256), default=(10_000,), show_default=True,
              help="Edge in pixels of a square synthetic region to measure (repeat for several; 10000 = 10^8 pixels).")
@click.option("--stages", default="ingest,zones,supply,run", show_default=True, help="Command-line stages to time (comma-separated).")
@click.option("--peers/--no-peers", default=True, help="Time exactextract and flox on the same inputs when they are installed.")
@click.option("--rasterstats", is_flag=True, help="Also time rasterstats (slow).")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(min=1), help="Best of this many in-process runs.")
@click.option("--counties", default=50, show_default=True, type=click.IntRange(min=1), help="Counties of the synthetic regions.")
@click.option("--data", "data_dir", default="bench-data", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the generated regions (reused between runs).")
@click.option("--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Write the results as JSON here.")
@click.option("--markdown", "markdown_path", default=None, type=click.Path(dir_okay=False), help="Write the markdown tables here (also printed).")
@click.option("--project", "project_pixels", default=None, type=float, metavar="PIXELS",
              help="Also build, without computing, the graphs of a run this large (e.g. 1e11) and project its wall time.")
@click.option("--project-units", default=45_000, show_default=True, help="Counties (units) of the projected run.")
@click.option("--project-tiles", default=10, show_default=True, help="GeoTIFF tiles of the projected run.")
@click.option("--project-workers", default=16, show_default=True, help="Single-thread workers the wall time is projected for.")
@click.option("--graph-only", is_flag=True, help="Measure nothing: only the projection's graphs (no wall time without a measured size).")
@bench_scheduler_option
@click.pass_context
@_handle_errors
def bench_command(ctx: click.Context, sizes: tuple[int, ...], stages: str, peers: bool, rasterstats: bool, repeats: int, counties: int,
                  data_dir: str, json_path: str | None, markdown_path: str | None, project_pixels: float | None, project_units: int,
                  project_tiles: int, project_workers: int, graph_only: bool, scheduler: Any) -> None:
    """Benchmark carbonscape on this machine or cluster: stages, memory, peers and task graphs.

    Each stage runs as the real command in a subprocess (wall time, peak RSS of the process tree),
    then in-process against a running executor, with the read + decode floor and the peers
    installed (exactextract, flox, rasterstats); every stage's task count and graph size are
    built without computing. --project builds the graphs of a much larger run on no data.
    Results: a markdown table on stdout, JSON with --json. Large sizes take the machine's whole
    memory bandwidth for minutes: on a shared machine keep to 10^8 pixels (--size 10000).

    \b
    Examples:
        carbonscape bench --size 3000 --size 10000 --json bench.json
        carbonscape bench --graph-only --project 1e11 --project-units 45000
    """
    import json as json_module

    from carbonscape import bench

    wanted = tuple(s.strip() for s in stages.split(",") if s.strip())
    unknown = sorted(set(wanted) - set(bench.STAGES))
    if unknown:
        raise carbonscape.InputError(f"--stages {','.join(unknown)}: not a stage; the stages are {', '.join(bench.STAGES)}")
    if graph_only and not project_pixels:
        raise carbonscape.InputError("--graph-only needs --project PIXELS (e.g. --project 1e11)")
    from carbonscape.cluster import JOB_QUEUES

    if scheduler is not None and scheduler.lower() in JOB_QUEUES:
        raise carbonscape.InputError(
            f"--scheduler {scheduler} for bench: give a scheduler address or scheduler file; on a job queue, start a dask "
            "scheduler with worker jobs there (dask-jobqueue) and give its scheduler file, so the stages time carbonscape "
            "rather than the queue"
        )
    quiet = ctx.find_root().obj.get("quiet")
    results = bench.run_bench(
        () if graph_only else sizes, data_dir=Path(data_dir), stages=wanted, peers=peers, rasterstats=rasterstats, repeats=repeats,
        counties=counties, scheduler=scheduler, project_pixels=project_pixels, project_units=project_units, project_tiles=project_tiles,
        project_workers=project_workers, log=(lambda message: None) if quiet else (lambda message: log.info("%s", message)),
    )
    table = bench.markdown(results)
    if json_path:
        Path(json_path).write_text(json_module.dumps(results, indent=2))
    if markdown_path:
        Path(markdown_path).write_text(table)
    click.echo(table)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script.

    \b
    Example:
        eval "$(carbonscape completion bash)"     # add to ~/.bashrc
    """
    from click.shell_completion import get_completion_class

    completer_class = get_completion_class(shell)
    assert completer_class is not None
    completer = completer_class(cli, {}, "carbonscape", "_CARBONSCAPE_COMPLETE")
    click.echo(completer.source())


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Console-script entry point."""
    import signal

    # SIGTERM (a scheduler's or a user's `kill`) unwinds like Ctrl-C: staging folders are removed
    # and the previous results stay as they were.
    signal.signal(signal.SIGTERM, _interrupt)
    cli(prog_name="carbonscape")


if __name__ == "__main__":
    main()
